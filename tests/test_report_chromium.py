"""The `magmap run` report as a person sees it: opened offline in headless Chromium, every figure decoded and
drawn, nothing linked that is not in the folder."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_run_pipeline import small_run_dir


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed on CI (apt-get install chromium)")
    pytest.skip("chromium is not installed")


def _headless(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # --no-sandbox: Chromium refuses to start as root otherwise; the page is our own local file
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--disable-extensions", "--allow-file-access-from-files", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])


def _not_blank(img: Image.Image) -> None:
    px = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert px.shape[0] > 50 and px.shape[1] > 50
    ink = np.any(px < 200, axis=2).mean()  # pixels that are not (near) white
    assert 0.01 < ink < 0.9, f"image looks blank or solid (ink fraction {ink:.3f})"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = small_run_dir(tmp_path_factory)
    return out, (out / "report.html").read_text(encoding="utf-8")


def test_every_figure_is_an_embedded_non_blank_png(report):
    _, text = report
    page = _Page()
    page.feed(text)
    summary_sections = {"embedding by group", "embedding by certified radius", "cell networks", "gene network",
                        "module heatmap", "robustness curves", "gene impact", "MED-MAGMA vs GmGM scores"}
    assert {img["alt"] for img in page.imgs} == summary_sections
    for img in page.imgs:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        _not_blank(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def test_links_resolve_offline(report):
    out, text = report
    page = _Page()
    page.feed(text)
    assert "script" not in page.tags and "link" not in page.tags and "http://" not in text and "https://" not in text
    assert page.links
    for href in page.links:
        if href.startswith("#"):
            assert href[1:] in page.ids, href
        else:
            assert (out / href).is_file(), href


def test_chromium_draws_every_image_and_the_page(report, tmp_path):
    out, text = report
    probe = tmp_path / "report_probe.html"
    # a copy of the report that records, once loaded, what Chromium decoded for each image
    script = ("<script>window.addEventListener('load',()=>{document.body.setAttribute('data-imgs',"
              "JSON.stringify([...document.images].map(i=>[i.complete,i.naturalWidth,i.naturalHeight])))})</script>")
    probe.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = _headless("--virtual-time-budget=5000", "--dump-dom", probe.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    start = dom.stdout.index('data-imgs="') + len('data-imgs="')
    decoded = json.loads(dom.stdout[start:dom.stdout.index('"', start)].replace("&quot;", '"'))
    assert len(decoded) == 8 and all(ok and w > 100 and h > 100 for ok, w, h in decoded), decoded

    shot = tmp_path / "report.png"
    res = _headless("--window-size=1200,2400", f"--screenshot={shot}", (out / "report.html").as_uri(), cwd=tmp_path)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2400)
    _not_blank(img)
    px = np.asarray(img, dtype=np.float64)
    # the figures are in colour; text and rules are grey: enough saturated pixels mean the plots were drawn
    saturation = px.max(axis=2) - px.min(axis=2)
    assert (saturation > 80).sum() > 5000
