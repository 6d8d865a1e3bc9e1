"""The page a browser gets, in a real browser (Debian's Chromium driven by Playwright), served by the real
functions-framework server and by serverless offline: upload, drag-free keyboard use, URL, errors, big photos
scaled in the browser, no request to any other origin, screenshots at desktop and phone widths."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.cli.test_verdicts import cat_photo, details_of, two_garments
from tests.helpers import ROOT, phone_photo
from tests.serverless import offline_server

SAMPLE = ROOT / "samples" / "pants.jpg"


@pytest.fixture(scope="module", params=["functions-framework", "serverless-offline"])
def site(request):
    """The page's URL on each local server."""
    if request.param == "functions-framework":
        yield request.getfixturevalue("gcp_server")()[0]
    else:
        with offline_server(FETCH_ALLOW_NETWORKS="127.0.0.0/8") as (base, _):
            yield base + "/predict"


@pytest.fixture
def page(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requests_seen = []
    page.on("request", lambda r: page.requests_seen.append(r.url))
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    response = page.goto(site)
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page.wait_for_selector("#model:has-text('Model clothing-model')")
    yield page
    origin = urlsplit(site)[:2]
    assert all(urlsplit(url)[:2] == origin for url in page.requests_seen if not url.startswith(("blob:", "data:"))), (
        page.requests_seen
    )
    context.close()


def top_label(page) -> str:
    page.wait_for_selector("#bars .bar.top", timeout=30_000)
    return page.inner_text("#bars .bar.top .label")


def test_a_chosen_photo_is_classified_with_bars_model_and_time(page):
    page.set_input_files("#file", str(SAMPLE))
    assert top_label(page) == "pants"
    assert page.locator("#bars .bar").count() == 5
    assert page.is_visible("#preview")
    assert "Answered in" in page.inner_text("#timing") and "clothing-model" in page.inner_text("#timing")
    assert not page.console_errors


def test_a_clothing_photo_is_asked_with_details_and_shows_bars_under_no_verdict_line(page):
    """The service's verdict for the sample is "clothing": the page shows the bars alone, as without details."""
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.method == "POST" else None)
    page.set_input_files("#file", str(SAMPLE))
    assert top_label(page) == "pants"
    assert [body["details"] for body in bodies] == [True]
    assert details_of(SAMPLE)["verdict"] == "clothing"
    assert page.inner_text("#verdict") == "" and not page.is_visible("#verdict")
    assert page.locator("#bars .bar").count() == 5


def test_a_photo_of_a_cat_is_said_not_to_be_clothing_and_gets_no_bars(page, tmp_path):
    """A photo unlike any clothing: the page says so in words, names the nearest label only in a muted line, and
    draws no bars that would present that label as an answer; the next photo clears it."""
    cat = cat_photo(tmp_path / "cat.jpg")
    answer = details_of(cat)
    assert answer["verdict"] == "not_clothing", answer
    page.set_input_files("#file", str(cat))
    page.wait_for_selector("#verdict:visible", timeout=30_000)
    assert page.inner_text("#verdict") == "This doesn't look like clothing"
    assert page.locator("#bars .bar").count() == 0
    assert f"“{answer['label']}”" in page.inner_text("#bars .muted") and "Answered in" in page.inner_text("#timing")
    page.set_input_files("#file", str(SAMPLE))
    assert top_label(page) == "pants" and not page.is_visible("#verdict")
    assert not page.console_errors


def test_a_photo_of_two_garments_is_not_sure_between_its_two_likeliest_labels(page, tmp_path):
    """Pants and a t-shirt side by side: clothing, but below the model's bar for one label. The page names the two
    likeliest, in the service's order, above the bars."""
    photo = two_garments(tmp_path / "both.jpg")
    answer = details_of(photo)
    assert answer["verdict"] == "not_sure", answer
    first, second = list(answer["scores"])[:2]
    page.set_input_files("#file", str(photo))
    assert top_label(page) == first
    assert page.inner_text("#verdict") == f"Not sure: {first} or {second}?"
    assert {first, second} == {"pants", "t-shirt"} and page.locator("#bars .bar").count() == 5


def test_a_file_that_is_not_an_image_is_a_clear_message(page, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    page.set_input_files("#file", str(text))
    page.wait_for_selector("#error:visible")
    assert "is not an image" in page.inner_text("#error")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    page.set_input_files("#file", str(broken))
    page.wait_for_selector("#error:has-text('Could not classify')")
    assert "could not be decoded" in page.inner_text("#error")
    assert page.locator("#bars .bar").count() == 0


def test_an_image_url_typed_with_the_keyboard(page, image_server):
    base, routes = image_server
    routes["/page-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, SAMPLE.read_bytes())
    for _ in range(10):  # Tab through the page to the URL field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "url":
            break
    assert page.evaluate("document.activeElement.id") == "url"
    page.keyboard.type(base + "/page-pants.jpg")
    page.keyboard.press("Enter")
    assert top_label(page) == "pants"
    page.fill("#url", "http://169.254.169.254/latest/meta-data/")
    page.click("#url-form button")
    page.wait_for_selector("#error:has-text('non-public address')")


def test_a_sideways_12_megapixel_phone_photo_is_sent_upright_small_and_gets_the_right_answer(page, tmp_path):
    """The page turns the photo upright, scales it to a 1,024-pixel long side and says so; the request is far
    under Lambda's 6 MB invocation payload (and under the smallest front door's limit: an ALB's 1 MB)."""
    photo = phone_photo(tmp_path / "phone.jpg")
    assert photo.stat().st_size > 5_500_000
    posts = []
    page.on("request", lambda r: posts.append(len(r.post_data_buffer or b"")) if r.method == "POST" else None)
    page.set_input_files("#file", str(photo))
    assert top_label(page) == "pants"
    assert "Scaled from 3000×4000" in page.inner_text("#timing") and "to 768×1024" in page.inner_text("#timing")
    assert len(posts) == 1 and posts[0] < 1_000_000, posts
    assert not page.is_visible("#error")


def test_a_photo_over_the_pixel_limit_is_scaled_in_the_browser_and_keeps_its_answer(page, tmp_path):
    """42 MP is over the API's 40 MP limit: the page scales it before sending; the top label is the original's."""
    from PIL import Image

    big = tmp_path / "big.jpg"
    with Image.open(SAMPLE) as image:
        image.resize((7000, 6000), Image.BICUBIC).save(big, quality=90)
    page.set_input_files("#file", str(big))
    assert top_label(page) == "pants"
    assert "Scaled from 7000×6000" in page.inner_text("#timing")
    assert not page.is_visible("#error")


def test_a_small_photo_is_sent_as_it_is(page):
    """The sample (400x533) is no larger than the model needs: sent untouched, and the page says so."""
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.method == "POST" else None)
    page.set_input_files("#file", str(SAMPLE))
    assert top_label(page) == "pants"
    assert "Sent as it is: 400×533" in page.inner_text("#timing")
    assert [base64.b64decode(body["image"]) for body in bodies] == [SAMPLE.read_bytes()]


def test_a_transparent_png_that_fits_is_sent_as_it_is_and_gets_the_apis_answer(page, tmp_path):
    """A cut-out PNG (1200x1600, transparent around the garment) within the limits: the page sends the file itself,
    never redrawn (on black) as JPEG, so the page's answer is the API's for that file."""
    from PIL import Image

    from core.contract import Request
    from core.service import Service

    png = tmp_path / "cutout.png"
    with Image.open(SAMPLE) as img:
        cutout = img.convert("RGBA").resize((1200, 1600), Image.BICUBIC)
    alpha = Image.new("L", cutout.size, 0)
    alpha.paste(255, (150, 200, 1050, 1400))  # the garment opaque, a border fully transparent
    cutout.putalpha(alpha)
    cutout.save(png)
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.method == "POST" else None)
    page.set_input_files("#file", str(png))
    shown = top_label(page)
    assert "Sent as it is: 1200×1600" in page.inner_text("#timing")
    assert [base64.b64decode(body["image"]) for body in bodies] == [png.read_bytes()]
    api = Service().handle(Request.invocation({"image": base64.b64encode(png.read_bytes()).decode()}, "test")).body
    assert shown == max(api, key=api.get)


def test_an_answer_arriving_after_a_newer_submission_is_never_shown(page, image_server):
    """A slow URL submitted first, a photo chosen while it is fetched: the photo's answer is shown, and the URL's,
    arriving later, is dropped."""
    import time

    base, routes = image_server

    def slow_t_shirt(handler):
        time.sleep(2.5)
        handler.reply(200, (ROOT / "samples" / "t-shirt.jpg").read_bytes(), {"Content-Type": "image/jpeg"})

    routes["/slow-t-shirt.jpg"] = slow_t_shirt
    answers = []
    page.on("response", lambda r: answers.append(r.status) if r.request.method == "POST" else None)
    page.fill("#url", base + "/slow-t-shirt.jpg")
    page.click("#url-form button")
    page.set_input_files("#file", str(SAMPLE))
    assert top_label(page) == "pants"
    for _ in range(100):  # until the slow answer has come back too
        if len(answers) == 2:
            break
        page.wait_for_timeout(100)
    assert answers == [200, 200]
    page.wait_for_timeout(300)  # time for the page to (wrongly) redraw
    assert top_label(page) == "pants" and not page.is_visible("#error")


def test_api_calls_stay_on_the_pages_origin_whatever_its_path(browser, site):
    """Opened at a path that reads as protocol-relative (//other-host/x), the page still calls its own origin.
    Where every path reaches the function (functions-framework here; a Lambda Function URL); serverless offline
    routes only /dev/predict."""
    if "/dev/predict" in site:
        pytest.skip("serverless offline answers only /dev/predict; the path cannot be chosen there")
    scheme, host = urlsplit(site)[:2]
    context = browser.new_context()
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{scheme}://{host}//other-host.invalid/x")
    page.wait_for_timeout(500)
    api = [url for url in requests[1:] if not url.startswith(("blob:", "data:"))]
    assert api and all(urlsplit(url).netloc == host for url in api), requests
    context.close()


def test_the_page_keeps_the_query_string_on_its_requests(browser, site):
    """Azure's function key travels as ?code=...: the page's own requests must carry it."""
    context = browser.new_context()
    page = context.new_page()
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(site + "?code=secret-key")
    page.set_input_files("#file", str(SAMPLE))
    assert top_label(page) == "pants"
    assert posts and all(url.endswith("?code=secret-key") for url in posts)
    context.close()


@pytest.mark.parametrize(
    "name, viewport, scheme",
    [
        ("desktop", {"width": 1280, "height": 900}, "light"),
        ("phone", {"width": 390, "height": 844}, "dark"),
    ],
)
def test_screenshots_at_desktop_and_phone_widths(browser, site, tmp_path, name, viewport, scheme):
    """Readable on a phone, light and dark. SCREENSHOT_DIR keeps them (docs/page-desktop.png and page-phone.png
    come from here)."""
    context = browser.new_context(viewport=viewport, color_scheme=scheme, device_scale_factor=1)
    page = context.new_page()
    page.goto(site)
    page.set_input_files("#file", str(SAMPLE))
    assert top_label(page) == "pants"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], "the page scrolls sideways"
    out = Path(os.environ.get("SCREENSHOT_DIR", tmp_path)) / f"page-{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    from PIL import Image

    with Image.open(io.BytesIO(out.read_bytes())) as shot:
        assert shot.size[0] == viewport["width"]
    context.close()
