"""The page in a real browser: headless Chromium (Debian's package) uploads a photo and shows its faces.

Skips when chromium, chromedriver or selenium is absent (CI installs them with
``apt-get install -y chromium chromium-driver``). The screenshot is kept in the test's tmp dir; with
``RETINAKIT_SCREENSHOT_DIR`` set it is also copied there (how docs/images/serve_page.png is made).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("selenium")

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="needs apt-get install chromium chromium-driver"
    ),
]


@pytest.fixture(scope="module")
def server_url(detector) -> Iterator[str]:
    """The service on 127.0.0.1 (a free port) in a thread, with the session's detector."""
    from retinakit.apps.serve import ServeConfig, create_app, server_options

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from retinakit import Detector

    low = Detector(detector.config, score_threshold=0.3, backend_instance=detector.backend)  # the service's floor
    config = ServeConfig(port=port, detector=low.config)
    app = create_app(config, detector=low)
    server = uvicorn.Server(uvicorn.Config(app, **server_options(config, "warning")))  # as retinakit serve runs
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_page_uploads_a_photo_and_shows_its_faces(
    browser, server_url: str, astronaut_rgb: np.ndarray, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), astronaut_rgb[:, :, ::-1])
    browser.get(server_url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: "mobilenet0.25" in d.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "file").send_keys(str(photo))
    status = browser.find_element(By.ID, "status")
    wait.until(lambda d: status.get_attribute("data-faces") != "" or "Error" in status.text)
    assert status.get_attribute("data-faces") == "1", status.text  # the astronaut photo has one face
    assert status.text.startswith("1 face ·") and "512 × 512" in status.text
    crops = browser.find_elements(By.CSS_SELECTOR, "#crops-out img")
    assert len(crops) == 1
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", crops[0]))
    assert browser.execute_script("return arguments[0].naturalWidth", crops[0]) == 112
    canvas = browser.find_element(By.ID, "view")
    assert (canvas.get_attribute("width"), canvas.get_attribute("height")) == ("512", "512")
    # the drawn box: the canvas pixel on the face box's top edge is the box colour (#00e08a)
    json_text = browser.find_element(By.ID, "json").text
    assert '"left_eye"' in json_text and '"box_relative"' in json_text
    pixel = browser.execute_script(
        "const f = JSON.parse(arguments[0]).faces[0];"
        "const x = Math.round((f.box[0] + f.box[2]) / 2), y = Math.floor(f.box[1]);"  # inside the 2-px line
        "return Array.from(arguments[1].getContext('2d').getImageData(x, y, 1, 1).data);",
        json_text,
        canvas,
    )
    assert pixel[:3] == [0, 224, 138], pixel
    shot = tmp_path / "serve_page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("RETINAKIT_SCREENSHOT_DIR"):
        target = Path(os.environ["RETINAKIT_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)


def test_page_shows_an_error_as_text(browser, server_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    not_image = tmp_path / "notes.png"
    not_image.write_bytes(b"this is not an image" * 10)
    browser.get(server_url + "/")
    browser.find_element(By.ID, "file").send_keys(str(not_image))
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda d: "Error" in status.text)
    assert "415" in status.text and "unsupported_image" in status.text
