"""The documentation stands alone and matches the code.

- every ``docs/algorithms.md N[.M]`` citation in ``src/``, ``bench/`` and the README
  names a numbered heading of ``docs/algorithms.md``;
- no file of the repository points outside it (to the planning notes the project
  was started from);
- the public API has numpydoc docstrings: every parameter of each public
  callable is listed under "Parameters", and what it returns under "Returns".
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = ROOT / "docs" / "algorithms.md"

#: directories (and files) whose citations of docs/algorithms.md are checked.
CITING = ("src", "bench", "README.md")
#: where no pointer outside the repository may appear.
STANDALONE = ("src", "tests", "bench", "docs", "README.md")
#: the two strings that would point outside the repository, built here so that
#: this file does not contain them itself.
OUTSIDE = ("ALGORITHMS" + ".md", "shared" + "/")
#: text files worth reading (binary results and generated metadata are skipped).
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".json", ".log", ".csv", ".rst"}

#: the public modules whose ``__all__`` is checked by numpydoc.
PUBLIC_MODULES = (
    "relurecover",
    "relurecover.networks",
    "relurecover.metrics",
    "relurecover.moments",
    "relurecover.tensor",
    "relurecover.activations",
    "relurecover.instances",
    "relurecover.deep",
    "relurecover.twolayer",
    "relurecover.baselines",
    "relurecover.optimize",
    "relurecover.formats",
    "relurecover.report",
)

_NUM = r"\d+(?:\.\d+)?"
#: ``docs/algorithms.md 1.4``, ``... 1, 1.5, 3``, ``... 1.4-1.6``, ``... sections 1 and
#: 4``, ``... section 1, steps 1-3`` (only the section), and in Markdown
#: ```docs/algorithms.md` 1.5, 3``.
CITATION = re.compile(
    r"docs/algorithms\.md`?,?[ \t]+(?:sections?[ \t]+)?"
    rf"(?P<list>{_NUM}(?:[ \t]*(?:-|,|and)[ \t]*{_NUM})*)"
)
#: ``docs/algorithms.md, "Conventions"``: a citation of a heading by its name.
NAMED_CITATION = re.compile(r'docs/algorithms\.md`?,[ \t]+"?(?P<name>[A-Z][A-Za-z-]+)')
HEADING = re.compile(r"^(#{1,6})[ \t]+(?P<text>.+?)[ \t]*#*[ \t]*$")
HEADING_NUMBER = re.compile(rf"^(?P<num>{_NUM})\.?(?=\s)")


def _text_files(entries):
    for entry in entries:
        path = ROOT / entry
        if path.is_file():
            yield path
            continue
        for p in sorted(path.rglob("*")):
            if (p.is_file() and p.suffix in TEXT_SUFFIXES
                    and "__pycache__" not in p.parts
                    and not any(part.endswith(".egg-info") for part in p.parts)):
                yield p


def _headings():
    """``(numbers, texts)`` of the headings of docs/algorithms.md (code blocks skipped)."""
    numbers, texts = [], []
    fenced = False
    for line in ALGORITHMS.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            text = m.group("text")
            texts.append(text)
            num = HEADING_NUMBER.match(text)
            if num:
                numbers.append(num.group("num"))
    return numbers, texts


def _expand(cited: str):
    """Section numbers named by ``"1, 1.5, 3"``, ``"1.4-1.6"`` or ``"1 and 4"``."""
    out = []
    for part in re.split(r"[ \t]*(?:,|and)[ \t]*", cited):
        if "-" not in part:
            out.append(part.strip())
            continue
        lo, hi = (s.strip() for s in part.split("-"))
        out += [lo, hi]
        a, _, b = lo.partition(".")
        c, _, e = hi.partition(".")
        if b and e and a == c:  # 1.4-1.6 also names 1.5
            out += [f"{a}.{j}" for j in range(int(b) + 1, int(e))]
        elif not b and not e:  # sections 1-3 also names 2
            out += [str(j) for j in range(int(a) + 1, int(c))]
    return out


def _citations():
    found = []
    for path in _text_files(CITING):
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT)
        for m in CITATION.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found += [(f"{rel}:{line}", num) for num in _expand(m.group("list"))]
    return found


def test_algorithms_md_numbering():
    """Sections 0-8 in order, the steps of 1 and 5, and no number used twice."""
    numbers, _ = _headings()
    assert len(numbers) == len(set(numbers)), f"duplicate section numbers: {numbers}"
    top = [n for n in numbers if "." not in n]
    assert top == [str(i) for i in range(9)], top
    for sub in [f"1.{j}" for j in range(1, 7)] + [f"5.{j}" for j in range(1, 5)]:
        assert sub in numbers, f"section {sub} is missing from docs/algorithms.md"
    # the parser sees what a reader sees
    assert _expand("1.4-1.6") == ["1.4", "1.6", "1.5"]
    assert _expand("1 and 4") == ["1", "4"]
    assert _expand("1-3") == ["1", "3", "2"]


def test_every_cited_section_exists():
    numbers, _ = _headings()
    cites = _citations()
    assert len(cites) > 20, "the citation parser found almost nothing"
    missing = [f"{where}: docs/algorithms.md {num}" for where, num in cites
               if num not in numbers]
    assert not missing, "cited sections without a heading:\n" + "\n".join(missing)


def test_every_named_citation_exists():
    _, texts = _headings()
    bad = []
    for path in _text_files(CITING + ("tests",)):
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in NAMED_CITATION.finditer(text):
            name = m.group("name").lower()
            if not any(name in t.lower() for t in texts):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{path.relative_to(ROOT)}:{line}: {m.group(0)!r}")
    assert not bad, "citations of headings that do not exist:\n" + "\n".join(bad)


def test_nothing_points_outside_the_repository():
    bad = []
    for path in _text_files(STANDALONE):
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in OUTSIDE:
            for m in re.finditer(re.escape(needle), text):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{path.relative_to(ROOT)}:{line}: {needle}")
    assert not bad, "files pointing outside the repository:\n" + "\n".join(bad)


# --------------------------------------------------------------------------- numpydoc


def _returns_value(func) -> bool:
    """Whether ``func`` returns something: a non-None annotation or ``return x``."""
    ann = inspect.signature(func).return_annotation
    if ann is not inspect.Signature.empty:
        return ann not in (None, "None")
    try:
        src = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False
    tree = ast.parse(src)
    node = tree.body[0]

    def walk(n):
        for child in ast.iter_child_nodes(n):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                  ast.ClassDef)):
                continue
            if isinstance(child, ast.Return) and child.value is not None and not (
                    isinstance(child.value, ast.Constant) and child.value.value is None):
                return True
            if walk(child):
                return True
        return False

    return walk(node)


def _yields(func) -> bool:
    return inspect.isgeneratorfunction(func)


def _documented(section) -> set:
    names = set()
    for p in section:
        for name in p.name.split(","):
            names.add(name.strip().lstrip("*"))
    return names


def _signature_params(func):
    params = inspect.signature(func).parameters.values()
    return [p.name for p in params
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in ("self", "cls")]


def _check_callable(label, func, doc_text, *, accept_attributes=False):
    from numpydoc.docscrape import NumpyDocString

    problems = []
    if not doc_text or not doc_text.strip():
        return [f"{label}: no docstring"]
    try:
        doc = NumpyDocString(doc_text)
    except Exception as exc:  # a docstring numpydoc cannot parse
        return [f"{label}: numpydoc cannot parse the docstring ({exc})"]
    documented = _documented(doc["Parameters"])
    if accept_attributes:
        documented |= _documented(doc["Attributes"])
    missing = [p for p in _signature_params(func) if p not in documented]
    if missing:
        problems.append(f"{label}: Parameters lacks {', '.join(missing)}")
    if _yields(func):
        if not doc["Yields"]:
            problems.append(f"{label}: no Yields section")
    elif _returns_value(func) and not doc["Returns"]:
        problems.append(f"{label}: no Returns section")
    return problems


def _check_class(label, cls):
    problems = []
    init = cls.__init__
    if init is not object.__init__:
        # a dataclass documents its fields, which are its parameters, as Attributes
        problems += _check_callable(label, init, inspect.getdoc(cls),
                                    accept_attributes=dataclasses.is_dataclass(cls))
    for name, member in vars(cls).items():
        if name.startswith("_") or isinstance(member, property):
            continue
        if isinstance(member, (classmethod, staticmethod)):
            func = member.__func__
        elif inspect.isfunction(member):
            func = member
        else:
            continue
        if dataclasses.is_dataclass(cls) and name in {f.name for f in dataclasses.fields(cls)}:
            continue
        problems += _check_callable(f"{label}.{name}", func, inspect.getdoc(func))
    return problems


def _public_problems(module_name):
    module = importlib.import_module(module_name)
    problems = []
    for name in module.__all__:
        obj = getattr(module, name)
        where = f"{getattr(obj, '__module__', module_name)}.{name}"
        if inspect.isclass(obj):
            problems += _check_class(where, obj)
        elif inspect.isfunction(inspect.unwrap(obj)):  # functools wrappers included
            func = inspect.unwrap(obj)
            problems += _check_callable(where, func, inspect.getdoc(obj))
        elif callable(obj):
            problems.append(f"{where}: a public callable the check cannot inspect")
        # constants are not callables with a signature to document
    return problems


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_api_numpydoc(module_name):
    pytest.importorskip("numpydoc")
    if module_name == "relurecover.baselines":
        pytest.importorskip("torch")
    problems = _public_problems(module_name)
    assert not problems, "docstrings that miss numpydoc sections:\n" + "\n".join(problems)


def test_numpydoc_check_catches_a_bad_docstring():
    """The check itself: a missing parameter and a missing Returns are reported."""
    pytest.importorskip("numpydoc")

    def bad(x, y=1):
        """Do something.

        Parameters
        ----------
        x : int
            A number.
        """
        return x + y

    def good(x, *args, **kwargs):
        """Do nothing.

        Parameters
        ----------
        x : int
            A number.
        """

    problems = _check_callable("bad", bad, inspect.getdoc(bad))
    assert problems == ["bad: Parameters lacks y", "bad: no Returns section"]
    assert _check_callable("good", good, inspect.getdoc(good)) == []


# --------------------------------------------------------------------------- metadata


def test_one_version_string():
    """pyproject reads the version from the package; the installed metadata agrees."""
    tomllib = pytest.importorskip("tomllib")
    import importlib.metadata

    import relurecover

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in meta["project"]
    assert "version" in meta["project"]["dynamic"]
    attr = meta["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "relurecover.__version__"
    assert importlib.metadata.version("relurecover") == relurecover.__version__


def test_license_matches_pyproject():
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert meta["project"]["license"]["text"] == "BSD-3-Clause"
    assert text.startswith("BSD 3-Clause License")
    assert "the relurecover developers" in text


def _resolve(dotted: str) -> bool:
    """Whether ``relurecover.<dotted>`` names a module or an attribute of one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module("relurecover." + ".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_code_named_in_algorithms_md_exists():
    """Every ``module.name`` the write-up points to is in the package."""
    modules = ("twolayer", "deep", "moments", "tensor", "activations", "metrics",
               "networks", "instances", "optimize", "_linalg")
    text = ALGORITHMS.read_text(encoding="utf-8")
    pattern = re.compile(r"`(?:relurecover\.)?((?:%s)(?:\.\w+)+)" % "|".join(modules))
    named = sorted(set(pattern.findall(text)))
    assert len(named) > 20, named
    missing = [n for n in named if not _resolve(n)]
    assert not missing, "docs/algorithms.md names code that does not exist: " + ", ".join(missing)
