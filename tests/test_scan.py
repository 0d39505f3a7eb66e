"""Scanning awkward folders, the `colorization-scan` command, the image cache and the split, from outside the package."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from skimage import data as skdata

from colorization.data import (build_cache, cache_key, colorization_dls, load_rgb, sample_folder, scan_images,
                               split)

IS_ROOT = hasattr(os, 'geteuid') and os.geteuid() == 0


def _photo(h=96, w=128, name='astronaut'):
    "A crop of a real colour photo."
    return np.ascontiguousarray(getattr(skdata, name)()[:h, :w, :3])


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    "A folder of awkward files, nested, and what each one must be classified as."
    d = tmp_path_factory.mktemp('corpus')
    (d/'nested'/'deeper').mkdir(parents=True)
    expect = {}

    Image.fromarray(_photo()).save(d/'good.jpg', quality=90); expect['good.jpg'] = 'ok'
    Image.fromarray(_photo(name='coffee')).save(d/'nested'/'coffee.png'); expect['nested/coffee.png'] = 'ok'
    Image.fromarray(_photo(name='chelsea')).save(d/'café été 日本.jpg'); expect['café été 日本.jpg'] = 'ok'
    latin1 = os.fsdecode(b'caf\xe9 latin-1.jpg')  # a name that is not valid UTF-8
    Image.fromarray(_photo(name='coffee', h=120)[20:]).save(d/latin1); expect[latin1] = 'ok'

    full = (d/'good.jpg').read_bytes()
    (d/'truncated.jpg').write_bytes(full[:len(full) // 2]); expect['truncated.jpg'] = 'unreadable'
    (d/'empty.jpg').write_bytes(b''); expect['empty.jpg'] = 'unreadable'
    (d/'text.jpg').write_text('this is not a photo\n' * 20); expect['text.jpg'] = 'not_image'
    (d/'notes.csv').write_text('a,b\n1,2\n'); expect['notes.csv'] = 'not_image'

    rgba = np.dstack([_photo(name='rocket'), np.full((96, 128), 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # a transparent corner
    Image.fromarray(rgba, 'RGBA').save(d/'rgba.png'); expect['rgba.png'] = 'ok'
    Image.fromarray(_photo(name='hubble_deep_field', h=120)).convert('P').save(d/'palette.png'); expect['palette.png'] = 'ok'
    Image.fromarray(_photo(name='immunohistochemistry')).convert('CMYK').save(d/'cmyk.jpg'); expect['cmyk.jpg'] = 'ok'
    gray = np.asarray(Image.fromarray(_photo(name='retina', h=200, w=200)[50:150, 50:150]).convert('L'), np.uint16)
    Image.fromarray(gray * 257).save(d/'sixteen.png'); expect['sixteen.png'] = 'grayscale'  # 16-bit and gray content
    assert Image.open(d/'sixteen.png').mode.startswith('I')
    Image.fromarray(_photo()[:1, :1]).save(d/'one.png'); expect['one.png'] = 'too_small'
    Image.fromarray(skdata.camera()[:100, :100]).convert('RGB').save(d/'nested'/'bw.jpg'); expect['nested/bw.jpg'] = 'grayscale'

    exif = Image.Exif(); exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(_photo(h=20, w=40, name='coffee')).save(d/'exif_small.jpg', exif=exif); expect['exif_small.jpg'] = 'too_small'
    Image.fromarray(_photo(h=80, w=120, name='colorwheel')).save(d/'exif.jpg', exif=exif); expect['exif.jpg'] = 'ok'

    shutil.copy(d/'good.jpg', d/'nested'/'deeper'/'copy.jpg'); expect['nested/deeper/copy.jpg'] = 'duplicate'
    load_rgb(d/'good.jpg').resize((192, 144)).save(d/'nested'/'bigger.jpg', quality=70)
    expect['nested/bigger.jpg'] = 'ok'  # larger: kept, the original 128x96 becomes its duplicate
    expect['good.jpg'] = 'duplicate'

    (d/'nested'/'deeper'/'loop').symlink_to(d/'nested')  # directory symlink loop
    (d/'self.jpg').symlink_to(d/'self.jpg'); expect['self.jpg'] = 'unreadable'
    (d/'broken.jpg').symlink_to(d/'missing.jpg'); expect['broken.jpg'] = 'unreadable'
    expect['nested/deeper/loop'] = 'unreadable'
    os.mkfifo(d/'fifo.jpg'); expect['fifo.jpg'] = 'unreadable'  # must not block

    Image.fromarray(_photo(name='chelsea', h=100, w=100)[:, ::-1]).save(d/'locked.jpg')
    os.chmod(d/'locked.jpg', 0)
    expect['locked.jpg'] = 'ok' if IS_ROOT else 'unreadable'  # root reads it anyway: then it is a fine photo
    (d/'.hidden.jpg').write_bytes(full)  # hidden names are skipped
    return d, expect


def _fingerprint(root: Path) -> dict:
    "Bytes and mtime of every file under root (links not followed), to prove nothing was modified."
    out = {}
    for p in sorted(root.rglob('*')):
        st = os.lstat(p)
        if p.is_symlink() or p.is_fifo(): out[str(p)] = ('link-or-fifo', st.st_mtime_ns, os.readlink(p) if p.is_symlink() else '')
        elif p.is_file():
            mode = st.st_mode
            os.chmod(p, 0o600)  # read even the locked file
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size)
            os.chmod(p, mode)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    return out


def test_scan_classifies_every_file(corpus, tmp_path):
    d, expect = corpus
    before = _fingerprint(d)
    report = scan_images(d, cache_dir=tmp_path, progress=False)
    assert _fingerprint(d) == before, 'the scan modified a source file'
    got = dict(zip(report.table.path, report.table.status))
    assert got == expect
    t = report.table.set_index('path')
    assert t.loc['nested/deeper/copy.jpg', 'duplicate_of'] == 'nested/bigger.jpg'
    assert t.loc['good.jpg', 'duplicate_of'] == 'nested/bigger.jpg'
    assert 'identical' in t.loc['nested/deeper/copy.jpg', 'reason'] or 'duplicate' in t.loc['nested/deeper/copy.jpg', 'reason']
    assert 'truncated' in t.loc['truncated.jpg', 'reason']
    assert 'empty' in t.loc['empty.jpg', 'reason']
    assert 'loop' in t.loc['self.jpg', 'reason'] and 'loop' in t.loc['nested/deeper/loop', 'reason']
    assert 'broken' in t.loc['broken.jpg', 'reason']
    assert 'alpha composited over white' in t.loc['rgba.png', 'note']
    assert 'palette' in t.loc['palette.png', 'note'] and 'CMYK' in t.loc['cmyk.jpg', 'note']
    assert 'I;16' in t.loc['sixteen.png', 'note'] or 'scaled to 8 bits' in t.loc['sixteen.png', 'note']
    assert (t.loc['exif_small.jpg', 'width'], t.loc['exif_small.jpg', 'height']) == (20, 40)  # orientation honoured
    assert (t.loc['exif.jpg', 'width'], t.loc['exif.jpg', 'height']) == (80, 120)
    assert 'orientation 6' in t.loc['exif.jpg', 'note']
    assert 'below 64' in t.loc['one.png', 'reason'] and 'chroma' in t.loc['nested/bw.jpg', 'reason']
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # truncation is detected, never papered over globally
    c = report.counts()
    assert c['total'] == len(expect) and sum(v for k, v in c.items() if k != 'total') == c['total']
    assert sorted(str(p.relative_to(d)) for p in report.usable) == sorted(k for k, v in expect.items() if v == 'ok')
    assert str(report.counts()['ok']) in report.summary()


def test_conversions_are_correct(corpus):
    d, _ = corpus
    img = load_rgb(d/'rgba.png')
    assert img.mode == 'RGB' and img.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    assert img.getpixel((50, 50)) == tuple(_photo(name='rocket')[50, 50])
    assert load_rgb(d/'exif.jpg').size == (80, 120)
    s16 = np.asarray(load_rgb(d/'sixteen.png'))
    ref = np.asarray(Image.fromarray(_photo(name='retina', h=200, w=200)[50:150, 50:150]).convert('L'))
    assert s16.dtype == np.uint8 and (s16[..., 0] == ref).all()
    cmyk = np.asarray(load_rgb(d/'cmyk.jpg'), float)
    assert abs(cmyk.mean() - _photo(name='immunohistochemistry').mean()) < 5


def test_scan_cache_reused_and_refreshed(tmp_path):
    d = sample_folder(tmp_path/'photos', size=80)
    first = scan_images(d, cache_dir=tmp_path/'cache', progress=False)
    assert first.from_cache == 0
    again = scan_images(d, cache_dir=tmp_path/'cache', progress=False)
    assert again.from_cache == first.counts()['total'] and again.table.status.tolist() == first.table.status.tolist()
    Image.fromarray(skdata.camera()[:90, :90]).convert('RGB').save(d/'coffee.jpg')  # now black and white
    third = scan_images(d, cache_dir=tmp_path/'cache', progress=False)
    assert third.from_cache == first.counts()['total'] - 1
    assert third.table.set_index('path').loc['coffee.jpg', 'status'] == 'grayscale'


def test_cli_json_end_to_end(corpus, tmp_path):
    d, expect = corpus
    exe = shutil.which('colorization-scan')
    cmd = [exe] if exe else [sys.executable, '-m', 'colorization.data']
    env = {**os.environ, 'COLORIZATION_CACHE': str(tmp_path/'cache')}
    out = subprocess.run(cmd + [str(d), '--json'], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert {f['path']: f['status'] for f in res['files']} == expect
    assert res['counts']['total'] == len(expect) and res['settings']['min_size'] == 64
    text = subprocess.run(cmd + [str(d)], capture_output=True, text=True, env=env, timeout=300)
    assert text.returncode == 0 and 'usable' in text.stdout and 'truncated.jpg' in text.stdout
    missing = subprocess.run(cmd + [str(tmp_path/'nowhere')], capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode != 0 and 'no such folder' in missing.stderr


def test_image_cache_reused_and_rebuilt(tmp_path):
    d = sample_folder(tmp_path/'photos', size=70)
    paths = sorted(d.iterdir())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}
    a = build_cache(paths, 48, tmp_path/'cache', progress=False)
    assert a.shape == (len(paths), 48, 48, 3) and a.dtype == np.uint8 and isinstance(a, np.memmap)
    made = Path(a.filename).stat().st_mtime_ns
    b = build_cache(paths, 48, tmp_path/'cache', progress=False)
    assert b.filename == a.filename and Path(b.filename).stat().st_mtime_ns == made  # reused, not rewritten
    assert cache_key(paths, 48) != cache_key(paths, 64)
    assert not list((tmp_path/'cache').glob('*.tmp-*'))  # written atomically
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths} == before
    time.sleep(0.01)
    Image.fromarray(skdata.rocket()[:100, :100]).save(paths[0])  # a file changes
    c = build_cache(paths, 48, tmp_path/'cache', progress=False)
    assert c.filename != a.filename
    assert not (np.asarray(c[0]) == np.asarray(a[0])).all() and (np.asarray(c[1:]) == np.asarray(a[1:])).all()


def test_split_deterministic_disjoint_80_20():
    tr, va = split(1000, valid_pct=0.2, seed=7)
    assert len(va) == 200 and len(tr) == 800 and not set(tr) & set(va)
    assert sorted(np.concatenate([tr, va])) == list(range(1000))
    tr2, va2 = split(1000, valid_pct=0.2, seed=7)
    assert (va2 == va).all() and (tr2 == tr).all()
    assert set(split(1000, seed=8)[1]) != set(va)
    groups = np.repeat(np.arange(250), 4)
    tr, va = split(groups, 0.2, seed=7)
    assert len(va) == 200 and not set(groups[tr]) & set(groups[va])


def test_dataloaders_on_sample_folder(tmp_path):
    d = sample_folder(tmp_path/'photos', size=72)
    dls = colorization_dls(d, size=48, bs=4, cache_dir=tmp_path/'cache', progress=False, device='cpu')
    l, ab = dls.one_batch()
    assert l.shape == (4, 1, 48, 48) and ab.shape == (4, 2, 48, 48) and dls.n_inp == 1
    assert dls.space == 'ab' and dls.size == 48 and dls.backbone is None and dls.cache_key
    assert len(dls.train_idx) + len(dls.valid_idx) == 13 and len(dls.valid_idx) == 3
    again = colorization_dls(d, size=48, bs=4, cache_dir=tmp_path/'cache', progress=False, device='cpu')
    assert (again.valid_idx == dls.valid_idx).all() and again.cache_key == dls.cache_key
    x, y = colorization_dls(d, space='rgb', size=48, bs=4, cache_dir=tmp_path/'cache', progress=False, device='cpu').one_batch()
    assert y.shape == (4, 3, 48, 48)
    with pytest.raises(FileNotFoundError, match='no such folder'): colorization_dls(tmp_path/'nowhere', progress=False)


def test_dataloaders_with_backbone_and_workers(tmp_path):
    d = sample_folder(tmp_path/'photos', size=72)
    dls = colorization_dls(d, size=48, bs=4, backbone='efficientnet_lite0', pretrained=False, num_workers=1,
                           cache_dir=tmp_path/'cache', progress=False, device='cpu')
    l, emb, ab = dls.one_batch()
    assert dls.n_inp == 2 and emb.shape == (4, 1280) and emb.dtype.is_floating_point and ab.shape == (4, 2, 48, 48)
    batches = list(dls.train)  # worker processes reopen the memory-mapped cache
    assert len(batches) == 2 and all(len(b) == 3 for b in batches)
