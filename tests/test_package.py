"The package's face: the user API from `import colorization`, loaded lazily, and no import circle."
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / 'colorization'


def _loaded(code: str) -> list[str]:
    r = subprocess.run([sys.executable, '-c', f'import sys; {code}; print(sorted(m for m in ("torch", "fastai", "pandas", "matplotlib") if m in sys.modules))'],
                       capture_output=True, text=True, check=True)
    return eval(r.stdout.strip().splitlines()[-1])


def test_import_is_cheap_and_the_api_lazy():
    assert _loaded('import colorization') == []
    assert _loaded('from colorization import colorize_files') == []  # the command's Python twin loads torch only when it runs
    assert _loaded('from colorization import load_model; load_model()') == ['torch']  # the shipped U-Net: built without fastai
    assert _loaded('from colorization import colorize, load_model, MODELS') == ['torch']  # no fastai for inference
    assert 'fastai' in _loaded('from colorization import colorize, load_model, colorization_dls, colorization_learner, MODELS')


def _top_level_imports(path: Path) -> set[str]:
    "The package modules `path` imports at module level (not inside functions)."
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module: out.add(node.module.split('.')[0])
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith('colorization.'): out.add(node.module.split('.')[1])
    return out


def test_no_import_circle_at_module_level():
    graph = {p.stem: _top_level_imports(p) for p in PKG.glob('*.py') if p.stem not in ('_modidx',)}
    seen, stack = set(), []
    def visit(m):
        assert m not in stack, f'import circle: {" -> ".join(stack[stack.index(m):] + [m])}'
        if m in seen or m not in graph: return
        stack.append(m)
        for d in graph[m]: visit(d)
        stack.pop(); seen.add(m)
    for m in graph: visit(m)


NBS = PKG.parent / 'nbs'
_IMPORT = re.compile(r"(?:from (?:colorization\.|\.)(\w+) import|import colorization\.(\w+)|'colorization\.(\w+):)")


def _notebook_order() -> dict[str, Path]:
    "Each module by the notebook that exports it, in the notebooks' order."
    found = {}
    for nb in sorted(NBS.glob('*.ipynb')):
        m = re.search(r'default_exp\s+(\w+)', nb.read_text())
        if m: found[m.group(1)] = nb
    return found


def test_notebooks_in_dependency_order():
    "No notebook, in its exported code, its checks or its registry references, reaches a module of a later notebook."
    order = _notebook_order()
    rank = {m: i for i, m in enumerate(order)}
    assert {'nets', 'models', 'checkpoint', 'learner', 'unet', 'gan', 'train', 'inference'} <= set(rank)
    later = []
    for mod, nb in order.items():
        for c in json.loads(nb.read_text())['cells']:
            if c['cell_type'] != 'code': continue
            for m in _IMPORT.finditer(''.join(c['source'])):
                target = next(g for g in m.groups() if g)
                if rank.get(target, -1) > rank[mod]: later.append(f'{nb.name} -> {target} ({order[target].name})')
    assert not later, 'imports of later notebooks: ' + '; '.join(later)
    assert rank['models'] > max(rank[m] for m in ('nets', 'hints', 'learner', 'gan', 'unet'))  # the registry after its families
