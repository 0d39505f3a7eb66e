"""The `colorize` command end to end on real photos: sizes, modes, EXIF, broken files, no overwriting, exit codes, checkpoint safety."""
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from colorization.command import main
from colorization.inference import colorize, default_checkpoint
from colorization.checkpoint import read_checkpoint_meta, save_checkpoint
from colorization.models import create_model

ENV = {**os.environ, 'PYTHONWARNINGS': 'ignore'}


def _sha(p: Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()


def _resized(arr, w, h): return Image.fromarray(arr).resize((w, h), Image.Resampling.LANCZOS)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    "A small labnet checkpoint (random weights, run at 32 px) so the tests don't depend on the shipped model."
    torch.manual_seed(0)
    return save_checkpoint(create_model('labnet'), tmp_path_factory.mktemp('ckpt') / 'labnet.safetensors', config={'size': 32})


# file name -> (displayed width, height), for the good inputs
GOOD = {'gray.png': (512, 512), 'color.jpg': (600, 400), 'odd.png': (513, 37), 'big.jpg': (2000, 1500),
        'deep16.png': (512, 512), 'rotated.jpg': (300, 451), 'nested/la.png': (451, 300)}
BAD = ['truncated.jpg', 'empty.jpg', 'notes.png']


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    "A folder of real photos in many modes and sizes, and three broken files."
    d = tmp_path_factory.mktemp('photos')
    (d / 'nested').mkdir()
    Image.fromarray(skdata.camera()).save(d / 'gray.png')                                   # 8-bit gray
    Image.fromarray(skdata.coffee()).save(d / 'color.jpg', quality=90)                      # colour
    Image.fromarray(np.ascontiguousarray(skdata.rocket()[100:137, :513])).save(d / 'odd.png')  # 37 x 513
    _resized(skdata.rocket(), 2000, 1500).save(d / 'big.jpg', quality=85)                   # 2000 x 1500
    Image.fromarray((skdata.camera().astype(np.uint16) * 257)).save(d / 'deep16.png')       # 16-bit gray
    im = Image.fromarray(skdata.chelsea()); exif = im.getexif(); exif[0x0112] = 6            # shown rotated 90 degrees
    im.save(d / 'rotated.jpg', exif=exif)
    g = skdata.chelsea()[..., 1]
    Image.fromarray(np.stack([g, np.full_like(g, 255)], -1), 'LA').save(d / 'nested' / 'la.png')  # gray + alpha
    full = (d / 'color.jpg').read_bytes()
    (d / 'truncated.jpg').write_bytes(full[:len(full) // 3])
    (d / 'empty.jpg').write_bytes(b'')
    (d / 'notes.png').write_text('not an image\n')
    return d


def run(*args, module=False):
    cmd = [sys.executable, '-m', 'colorization'] if module else [shutil.which('colorize') or 'colorize']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env=ENV, timeout=120)


def test_folder_end_to_end(photos, ckpt, tmp_path):
    "A folder of good and broken photos: outputs at the displayed sizes, inputs unchanged, a pre-existing output kept."
    out = tmp_path / 'out'
    before = {p: _sha(p) for p in photos.rglob('*') if p.is_file()}
    (out).mkdir(); sentinel = out / 'gray_color.png'; sentinel.write_bytes(b'mine')
    r = run(photos, '--out', out, '--model_pt', ckpt, '--compare', '--bs', 4)
    assert r.returncode == 1, r.stderr  # the three broken files failed
    for bad in BAD: assert f'failed: {photos / bad}' in r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith('6 colorized, 1 skipped, 3 failed in ')
    assert 'gray_color.png exists' in r.stderr and sentinel.read_bytes() == b'mine'
    for name, size in GOOD.items():
        if name == 'gray.png': continue
        res = out / Path(name).parent / (Path(name).stem + '_color.png')
        with Image.open(res) as im: assert (im.size, im.mode) == (size, 'RGB'), name
        with Image.open(res.with_name(Path(name).stem + '_compare.png')) as fig:
            assert fig.height <= 512 + 22 and fig.width > 2 * fig.height * size[0] / size[1] * 0.9 - 30
    assert {p: _sha(p) for p in photos.rglob('*') if p.is_file()} == before  # inputs byte-identical, nothing written beside them
    assert not list(out.rglob('.*.tmp'))
    # the colour input keeps its lightness: output L = input L (to 8-bit rounding)
    from colorization.color import rgb_to_l
    l = lambda p: rgb_to_l(torch.from_numpy(np.array(Image.open(p).convert('RGB'))).permute(2, 0, 1))
    assert (l(out / 'big_color.png') - l(photos / 'big.jpg')).abs().mean() < 0.01


def test_module_default_model_overwrite(photos, tmp_path, capsys):
    "`python -m colorization` with the shipped model on the shipped example; an existing output is replaced only with --overwrite."
    import colorization
    example = Path(colorization.__file__).parent / 'assets' / 'example_gray.jpg'
    assert default_checkpoint().is_file() and example.is_file()
    src = tmp_path / 'gray.png'; shutil.copy(photos / 'gray.png', src)
    dest = tmp_path / 'gray_color.png'; dest.write_bytes(b'old')
    assert main([str(src), '-q']) == 0 and dest.read_bytes() == b'old'  # skipped, untouched
    assert '0 colorized, 1 skipped, 0 failed' in capsys.readouterr().out
    shipped = read_checkpoint_meta(default_checkpoint())['model']  # --model names the shipped model, as the original's argument
    r = run(example, '--input', src, '--out', tmp_path, '--overwrite', '--compare', '--model', shipped, module=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith('2 colorized, 0 skipped, 0 failed in ')
    with Image.open(dest) as im: assert im.size == (512, 512)
    with Image.open(tmp_path / 'example_gray_color.png') as im, Image.open(example) as ex:
        assert im.size == ex.size and im.mode == 'RGB'
        a = np.asarray(im, dtype=np.float32)
        assert np.abs(a[..., 0] - a[..., 2]).mean() > 1  # the shipped model gives colour
    assert (tmp_path / 'example_gray_compare.png').exists() and (tmp_path / 'gray_compare.png').exists()
    assert _sha(src) == _sha(photos / 'gray.png')


class Evil:
    "A pickle whose loading would create a file."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.touch, (self.marker,))


def test_pickle_checkpoint_is_refused_without_running(photos, tmp_path, capsys):
    "A pickle posing as a checkpoint (torch.save or raw) is refused with exit 2, and its payload never runs."
    marker = tmp_path / 'pwned'
    torch.save(Evil(marker), tmp_path / 'evil.pth')
    r = run(photos / 'gray.png', '--out', tmp_path / 'out', '--model_pt', tmp_path / 'evil.pth')
    assert r.returncode == 2 and 'never unpickles' in r.stderr, r.stderr
    (tmp_path / 'evil.safetensors').write_bytes(pickle.dumps(Evil(marker)))
    assert main([str(photos / 'gray.png'), '--out', str(tmp_path / 'out'), '--model_pt', str(tmp_path / 'evil.safetensors')]) == 2
    assert 'never unpickles' in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / 'out').exists()


def test_usage_errors(photos, ckpt, tmp_path, capsys):
    "Missing, corrupt and wrong-model checkpoints and bad arguments: exit 2 with a clear message."
    args = [str(photos / 'gray.png'), '--out', str(tmp_path)]
    junk = tmp_path / 'junk.safetensors'; junk.write_bytes(os.urandom(300))
    cases = [(['--model_pt', str(tmp_path / 'missing.safetensors')], 'no checkpoint at'),
             (['--model_pt', str(junk)], 'not a safetensors'),
             (['--model_pt', str(ckpt), '--model', 'basic'], "not 'basic'"),
             (['--fit', 'crop'], 'invalid choice')]
    for extra, msg in cases:
        code = main(args + extra)
        err = capsys.readouterr().err
        assert code == 2 and msg in err, (extra, err)
    assert main([]) == 2 and 'no input' in capsys.readouterr().err
    assert not list(tmp_path.glob('*.png'))


def test_missing_inputs_fail(ckpt, tmp_path, capsys):
    "An input that does not exist or matches nothing is a failure (exit 1), the others still run."
    Image.fromarray(skdata.coffee()[:64, :96]).save(tmp_path / 'ok.png')
    code = main([str(tmp_path / 'ok.png'), str(tmp_path / 'gone.jpg'), str(tmp_path / 'none*.jpg'), '--model_pt', str(ckpt), '-q'])
    out, err = capsys.readouterr()
    assert code == 1 and 'gone.jpg: no such file' in err and 'none*.jpg: no image file matches' in err
    assert out.strip().splitlines()[-1].startswith('1 colorized, 0 skipped, 2 failed')
    with Image.open(tmp_path / 'ok_color.png') as im: assert im.size == (96, 64)


def test_api_sizes_and_modes(ckpt):
    "`colorize` from Python: arrays, PIL images and paths of any size give colour images of the same size."
    arr = skdata.rocket()[:37, :513]
    for img in (arr, Image.fromarray(arr).convert('L'), skdata.camera(), (skdata.camera().astype(np.uint16) * 257)):
        expected = (img.shape[1], img.shape[0]) if isinstance(img, np.ndarray) else img.size
        out = colorize(img, ckpt)
        assert out.mode == 'RGB' and out.size == expected
    out = colorize(skdata.chelsea(), ckpt, fit='square', upsample='bilateral', size=64)
    assert out.size == (451, 300)


def test_never_overwrites_an_input(ckpt, tmp_path, capsys):
    "An output that would replace an input is refused even with --overwrite; other outputs are replaced."
    Image.fromarray(skdata.coffee()[:64, :96]).save(tmp_path / 'a.png')
    Image.fromarray(skdata.chelsea()[:64, :96]).save(tmp_path / 'a_color.png')  # a photo that happens to have an output's name
    before = _sha(tmp_path / 'a_color.png')
    code = main([str(tmp_path / 'a.png'), str(tmp_path / 'a_color.png'), '--model_pt', str(ckpt), '--overwrite', '-q'])
    out, err = capsys.readouterr()
    assert code == 0 and 'its output would replace an input' in err
    assert out.strip().splitlines()[-1].startswith('1 colorized, 1 skipped, 0 failed')
    assert _sha(tmp_path / 'a_color.png') == before and (tmp_path / 'a_color_color.png').exists()
