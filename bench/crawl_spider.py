"""Scrapy side of bench/crawl: crawls the leakwatch testbed the way leakwatch does.

Follows every link (a/area href, iframe/frame src) that stays on one of the seed sites
(host AND port), up to 6 link hops from a seed, and downloads every image a page
references (img src/data-src/srcset, picture source srcset, background attributes,
url(...) in style attributes), each URL once thanks to Scrapy's dupefilter. Inline
data: URI images are decoded in place, as leakwatch does.

Run by bench/crawl:

    scrapy runspider bench/crawl_spider.py -a seeds=URL,URL,... -a out=FILE.json \
        -s CONCURRENT_REQUESTS=16 -s CONCURRENT_REQUESTS_PER_DOMAIN=16

On close it writes a JSON summary to `out`: pages (HTML responses), images, inline
images, other responses, HTTP errors and its own elapsed time (from spider creation to
close, so without interpreter start-up).
"""

import base64
import binascii
import json
import re
import time
from urllib.parse import urldefrag, urljoin, urlsplit

import scrapy
from scrapy.http import TextResponse

# Link hops from a seed, as leakwatch's `crawler.max_depth` default.
MAX_PAGE_DEPTH = 6

LINK_XPATH = "//a/@href | //area/@href | //iframe/@src | //frame/@src"
IMAGE_ATTR_XPATH = (
    "//img/@src | //img/@data-src | //input[@type='image']/@src"
    " | //body/@background | //table/@background | //td/@background"
)
SRCSET_XPATH = "//img/@srcset | //img/@data-srcset | //source/@srcset | //source/@data-srcset"
STYLE_XPATH = "//*[@style]/@style"
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM")
CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE)


class BenchSpider(scrapy.Spider):
    name = "leakwatch-bench"

    custom_settings = {
        # Concurrency is given on the command line (-s), which takes precedence.
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "DOWNLOAD_DELAY": 0,
        "ROBOTSTXT_OBEY": False,
        "AUTOTHROTTLE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        # The page depth limit is applied by the spider (pages only, like leakwatch):
        # Scrapy's DEPTH_LIMIT would also drop the images of the deepest pages.
        "DEPTH_LIMIT": 0,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "RETRY_ENABLED": False,
    }

    def __init__(self, seeds="", out="", urls_out="", *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()
        self.start_urls = [s.strip() for s in seeds.split(",") if s.strip()]
        if not self.start_urls:
            raise ValueError("give the seed URLs: -a seeds=URL,URL,...")
        self.out = out
        # Optional: every URL fetched, with what it was counted as (to diagnose mismatches).
        self.urls_out = open(urls_out, "w", encoding="utf-8") if urls_out else None
        # Sites are host:port pairs; allowed_domains would ignore the port.
        self.sites = {urlsplit(u).netloc.lower() for u in self.start_urls}
        self.counts = {
            "pages": 0,
            "images": 0,
            "inline_images": 0,
            "other": 0,
            "off_site_images": 0,
        }

    async def start(self):
        for request in self.start_requests():
            yield request

    def start_requests(self):
        # Scrapy's default start requests bypass the dupefilter, so a root would be fetched
        # again when a page links back to it; leakwatch fetches it once.
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse)

    def _on_site(self, url):
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc.lower() in self.sites

    def _absolute(self, base, ref):
        ref = ref.strip()
        if not ref:
            return None
        return urldefrag(urljoin(base, ref))[0]

    def _record(self, kind, response):
        self.counts[kind] += 1
        if self.urls_out:
            self.urls_out.write(f"{kind}\t{response.url}\n")

    @staticmethod
    def _is_image(response):
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        return content_type.startswith("image/") or response.body.startswith(IMAGE_MAGIC)

    def parse(self, response):
        # Like leakwatch, a link that turns out to be an image counts as an image.
        if self._is_image(response):
            self._record("images", response)
            return
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        if not isinstance(response, TextResponse) or "html" not in content_type:
            self._record("other", response)
            return
        self._record("pages", response)
        base = response.urljoin(response.css("base::attr(href)").get() or "")

        depth = response.meta.get("depth", 0)
        if depth < MAX_PAGE_DEPTH:
            for ref in response.xpath(LINK_XPATH).getall():
                url = self._absolute(base, ref)
                if url and self._on_site(url):
                    yield scrapy.Request(url, callback=self.parse)

        refs = response.xpath(IMAGE_ATTR_XPATH).getall()
        for srcset in response.xpath(SRCSET_XPATH).getall():
            refs.extend(c.split()[0] for c in srcset.split(",") if c.split())
        for style in response.xpath(STYLE_XPATH).getall():
            refs.extend(m.group(2) for m in CSS_URL.finditer(style))
        inline_seen = set()
        for ref in refs:
            ref = ref.strip()
            if ref[:5].lower() == "data:":
                data = self._data_uri_image(ref)
                if data is not None and data not in inline_seen:
                    inline_seen.add(data)
                    self.counts["inline_images"] += 1
                continue
            url = self._absolute(base, ref)
            if not url:
                continue
            if not self._on_site(url):
                self.counts["off_site_images"] += 1
                continue
            yield scrapy.Request(url, callback=self.parse_image)

    def parse_image(self, response):
        self._record("images" if self._is_image(response) else "other", response)

    @staticmethod
    def _data_uri_image(uri):
        meta, sep, data = uri[5:].partition(",")
        if not sep:
            return None
        parts = [p.strip().lower() for p in meta.split(";")]
        if not parts[0].startswith("image/") or "base64" not in parts[1:]:
            return None
        try:
            return base64.b64decode("".join(data.split()) + "==", validate=False)
        except (binascii.Error, ValueError):
            return None

    def closed(self, reason):
        elapsed = time.monotonic() - self.started
        if self.urls_out:
            self.urls_out.close()
        stats = self.crawler.stats.get_stats()
        prefix = "downloader/response_status_count/"
        errors = {
            "http." + k[len(prefix):]: v
            for k, v in stats.items()
            if k.startswith(prefix) and k[len(prefix):].isdigit() and int(k[len(prefix):]) >= 400
        }
        errors.update(
            {k: v for k, v in stats.items() if k.startswith("downloader/exception_type_count/")}
        )
        summary = dict(self.counts, errors=errors, reason=reason, elapsed_secs=round(elapsed, 3))
        if self.out:
            with open(self.out, "w", encoding="utf-8") as f:
                json.dump(summary, f)
                f.write("\n")
        else:
            print(json.dumps(summary))
