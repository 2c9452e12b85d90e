//! Bounded HTML parsing: the tree the parser really builds is measured while it is built.
//!
//! Parsing cost grows with element nesting (every start and end tag looks through the stack of
//! open elements), and a hostile page can nest as deep as its size allows. A textual pre-pass
//! cannot know what the parser will do (`<div/>` opens a div; an unmatched `</x>` closes
//! nothing; misnested formatting tags are re-opened), so the depth is measured in the tree
//! sink instead: every node records its depth when it is attached, and a node deeper than the
//! limit is left out of the tree. Input is fed in small slices with a deadline checked between
//! them, so a page that is still too costly is cut where the time ran out. Either cut keeps
//! everything parsed before it.

use std::borrow::Cow;
use std::cell::{Cell, Ref, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use ego_tree::NodeId;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, QualName};
use scraper::{Html, HtmlTreeSink};

/// Bytes of input handed to the parser between two deadline checks.
const SLICE: usize = 4096;

/// Why a document was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// An element would have been nested deeper than the limit.
    TooDeep,
    /// Parsing ran past its time budget.
    TooSlow,
}

/// A parsed document and whether (and why) it was cut.
pub struct Parsed {
    pub html: Html,
    pub cut: Option<Cut>,
}

/// Parses `input` as an HTML document, leaving out elements nested deeper than `max_depth`
/// and stopping at the first slice boundary after `budget` has elapsed.
pub fn parse_bounded(input: &str, max_depth: u32, budget: Duration) -> Parsed {
    let started = Instant::now();
    let sink = DepthSink::new(max_depth);
    let too_deep = sink.too_deep.clone();
    let mut parser = html5ever::parse_document(sink, Default::default());
    let mut rest = input;
    let mut cut = None;
    while !rest.is_empty() {
        let mut at = rest.len().min(SLICE);
        while !rest.is_char_boundary(at) {
            at -= 1; // never 0: a char is at most 4 bytes and SLICE is larger
        }
        let (slice, tail) = rest.split_at(at);
        parser.process(StrTendril::from_slice(slice));
        rest = tail;
        if too_deep.get() {
            cut = Some(Cut::TooDeep);
            break;
        }
        if !rest.is_empty() && started.elapsed() > budget {
            cut = Some(Cut::TooSlow);
            break;
        }
    }
    let html = parser.finish();
    if cut.is_none() && too_deep.get() {
        cut = Some(Cut::TooDeep);
    }
    Parsed { html, cut }
}

/// A flag shared between the sink (inside the parser) and the caller.
#[derive(Clone, Default)]
struct Flag(std::rc::Rc<Cell<bool>>);

impl Flag {
    fn get(&self) -> bool {
        self.0.get()
    }
    fn set(&self) {
        self.0.set(true)
    }
}

/// scraper's tree sink, with the depth of every attached node recorded.
struct DepthSink {
    inner: HtmlTreeSink,
    depth: RefCell<HashMap<NodeId, u32>>,
    max_depth: u32,
    too_deep: Flag,
}

impl DepthSink {
    fn new(max_depth: u32) -> Self {
        DepthSink {
            inner: HtmlTreeSink::new(Html::new_document()),
            depth: RefCell::new(HashMap::new()),
            max_depth,
            too_deep: Flag::default(),
        }
    }

    /// The depth of a node; the document is 0 and a node never attached counts as too deep.
    fn depth_of(&self, id: &NodeId) -> u32 {
        if *id == self.inner.get_document() {
            return 0;
        }
        self.depth
            .borrow()
            .get(id)
            .copied()
            .unwrap_or(self.max_depth.saturating_add(1))
    }

    /// Records `child`'s depth; false when it is too deep to attach.
    fn admit(&self, child: &NodeOrText<NodeId>, depth: u32) -> bool {
        let NodeOrText::AppendNode(id) = child else {
            return true; // text adds no nesting
        };
        self.depth.borrow_mut().insert(*id, depth);
        if depth > self.max_depth {
            self.too_deep.set();
            return false;
        }
        true
    }
}

impl TreeSink for DepthSink {
    type Handle = NodeId;
    type Output = Html;
    type ElemName<'a> = Ref<'a, QualName>;

    fn finish(self) -> Html {
        self.inner.finish()
    }
    fn parse_error(&self, msg: Cow<'static, str>) {
        self.inner.parse_error(msg)
    }
    fn get_document(&self) -> NodeId {
        self.inner.get_document()
    }
    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Ref<'a, QualName> {
        self.inner.elem_name(target)
    }
    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, f: ElementFlags) -> NodeId {
        self.inner.create_element(name, attrs, f)
    }
    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.inner.create_comment(text)
    }
    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.inner.create_pi(target, data)
    }
    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        let depth = self.depth_of(parent).saturating_add(1);
        if self.admit(&child, depth) && depth <= self.max_depth {
            self.inner.append(parent, child)
        }
    }
    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        let depth = self
            .depth_of(element)
            .max(self.depth_of(prev_element).saturating_add(1));
        if self.admit(&child, depth) && depth <= self.max_depth {
            self.inner
                .append_based_on_parent_node(element, prev_element, child)
        }
    }
    fn append_doctype_to_document(&self, name: StrTendril, public: StrTendril, system: StrTendril) {
        self.inner.append_doctype_to_document(name, public, system)
    }
    fn mark_script_already_started(&self, node: &NodeId) {
        self.inner.mark_script_already_started(node)
    }
    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        let contents = self.inner.get_template_contents(target);
        let depth = self.depth_of(target);
        self.depth.borrow_mut().insert(contents, depth);
        contents
    }
    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.inner.same_node(x, y)
    }
    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode)
    }
    fn append_before_sibling(&self, sibling: &NodeId, new_node: NodeOrText<NodeId>) {
        let depth = self.depth_of(sibling);
        if self.admit(&new_node, depth) && depth <= self.max_depth {
            self.inner.append_before_sibling(sibling, new_node)
        }
    }
    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.inner.add_attrs_if_missing(target, attrs)
    }
    fn remove_from_parent(&self, target: &NodeId) {
        self.inner.remove_from_parent(target)
    }
    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        self.inner.reparent_children(node, new_parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_depth(html: &Html) -> usize {
        html.tree
            .root()
            .descendants()
            .map(|n| n.ancestors().count())
            .max()
            .unwrap_or(0)
    }

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn ordinary_pages_are_not_cut() {
        let p = parse_bounded("<p>a<p>b<ul><li>c<li>d</ul><div/>e", 64, LONG);
        assert_eq!(p.cut, None);
        let text: String = p.html.root_element().text().collect();
        assert_eq!(text, "abcde");
    }

    #[test]
    fn self_closed_divs_nest_and_are_cut_at_the_limit() {
        // A textual pre-pass counts `<div/>` as closed; the parser opens a div for each.
        let page = "<div/>".repeat(5_000) + "deep";
        let p = parse_bounded(&page, 100, LONG);
        assert_eq!(p.cut, Some(Cut::TooDeep));
        assert!(max_depth(&p.html) <= 101, "{}", max_depth(&p.html));
        let text: String = p.html.root_element().text().collect();
        assert!(!text.contains("deep"));
    }

    #[test]
    fn unmatched_closers_do_not_hide_depth() {
        let page = "<div></x></y>".repeat(5_000);
        let p = parse_bounded(&page, 100, LONG);
        assert_eq!(p.cut, Some(Cut::TooDeep));
        assert!(max_depth(&p.html) <= 101);
    }

    #[test]
    fn a_slow_page_is_cut_by_time() {
        let page = "<span>".repeat(300) + &"</x>".repeat(500_000);
        let p = parse_bounded(&page, 512, Duration::ZERO);
        assert_eq!(p.cut, Some(Cut::TooSlow));
    }

    #[test]
    fn slices_end_on_char_boundaries() {
        let page = "é".repeat(10_000) + "<b>ü</b>";
        let p = parse_bounded(&page, 64, LONG);
        let text: String = p.html.root_element().text().collect();
        assert_eq!(text.chars().count(), 10_001);
    }
}
