"The app, driven through gradio_client on a free loopback port: an upload comes back coloured at its size, a red hint turns its spot red."
import socket

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from colorization.app import app_models, launch_app
from colorization.inference import load_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def app():
    from gradio_client import Client
    port = _free_port()
    demo = launch_app(port=port, inline=False, block=False, quiet=True)
    try: yield Client(f'http://127.0.0.1:{port}/', verbose=False), next(iter(app_models()))
    finally: demo.close()


def test_upload_comes_back_coloured_at_its_size(app, tmp_path):
    from gradio_client import handle_file
    client, label = app
    src = tmp_path / 'astronaut.png'
    Image.fromarray(skdata.astronaut()).convert('L').resize((301, 157)).save(src)  # gray, odd size
    out = Image.open(client.predict(handle_file(str(src)), label, '[]', 0.38, api_name='/colorize'))
    assert out.size == (301, 157) and out.mode == 'RGB'
    a = np.asarray(out).astype(int)
    assert np.abs(a[..., 0] - a[..., 2]).mean() > 1  # it has colour


def test_red_hint_turns_its_spot_red(app, tmp_path):
    from gradio_client import handle_file
    client, label = app
    if not load_model(app_models()[label]).takes_hints: pytest.skip('the shipped model takes no hints')
    src = tmp_path / 'coffee.png'
    Image.fromarray(skdata.coffee()).save(src)
    x, y = 420, 330  # the saucer's white rim
    plain = np.asarray(Image.open(client.predict(handle_file(str(src)), label, '[]', 0.38, api_name='/colorize'))).astype(int)
    red = np.asarray(Image.open(client.predict(handle_file(str(src)), label, f'[[{x}, {y}, [230, 20, 20]]]', 0.38,
                                               api_name='/colorize'))).astype(int)
    r, g, b = red[y, x]
    assert r > g + 30 and r > b + 30, (r, g, b)
    assert (red[y, x, 0] - red[y, x, 1]) > (plain[y, x, 0] - plain[y, x, 1]) + 20


def test_bad_upload_gives_a_message(app, tmp_path):
    from gradio_client import handle_file
    client, label = app
    bad = tmp_path / 'notes.png'
    bad.write_text('not an image')
    with pytest.raises(Exception, match='cannot use this file'):
        client.predict(handle_file(str(bad)), label, '[]', 0.38, api_name='/colorize')
