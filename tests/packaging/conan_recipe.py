#!/usr/bin/env python3
"""Checks conan/conanfile.py without a Conan client (none is reachable where these tests run).

The recipe is imported against a small stand-in for the `conan` package (sys.modules entries
with just enough behaviour), its methods are called the way Conan 2 calls them, and what they
produce is compared with the project itself:

  * metadata: name, version (set_version() against project(ksvc VERSION ...)), description
    (project DESCRIPTION), license and homepage (cmake/debian/copyright), topics, url
  * options and default_options; per mode (default, header_only=True): package_type, fPIC,
    requirements, tool requirements, package_id, validate() (Linux only, the C++ standard
    ksvcTargets.cmake asks of consumers, GCC 12+)
  * generate(): every KSVC_* option of cmake/KsvcOptions.cmake is set, tests/examples off
  * export_sources(): the exported tree configures with CMake using generate()'s variables
  * package(): the license file, CCI's removals, the header-only include tree
  * package_info() against the installed lib/cmake/ksvc/ksvcTargets.cmake: one component per
    exported target (but the umbrella ksvc::ksvc), the same target names, requirements matching
    INTERFACE_LINK_LIBRARIES, library names matching the installed archives
  * conan/test_package/conanfile.py: requires the tested reference, runs the program, exit 77
    (io_uring refused) is not a failure

What it cannot check is Conan itself: dependency resolution, CMakeDeps' generated files and a real
`conan create`. The test_package's CMake project is built against the install tree separately
(tests/packaging/install_and_consume.cmake).

usage: conan_recipe.py --recipe conan/conanfile.py --version X.Y.Z --work-dir DIR --cmake CMAKE
                       [--install-from BUILD_DIR] [--generator G] [--cxx CXX]
Exit 0 when everything agrees, 1 with one line per disagreement otherwise.
"""
import argparse
import contextlib
import copy as copymod
import fnmatch
import functools
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import traceback
import types
from pathlib import Path

# --------------------------------------------------------------------------------------------
# The stand-in `conan` package
# --------------------------------------------------------------------------------------------


class ConanException(Exception):
    pass


class ConanInvalidConfiguration(ConanException):
    pass


class Fake:
    """What the stand-in tools record; reset before each recipe method under test."""

    def __init__(self):
        self.reset()
        self.install_tree = None  # what CMake.install() copies into the package folder
        self.can_run = True

    def reset(self):
        self.toolchains = []
        self.deps = []
        self.cmake_calls = []
        self.layouts = []


FAKE = Fake()


class Value(str):
    """A setting's value. compiler's also carries its sub-settings (compiler.version, ...)."""

    def get_safe(self, name, default=None):
        value = getattr(self, name, None)
        return default if value is None else value


class Settings:
    def __init__(self, os="Linux", arch="x86_64", compiler="gcc", compiler_version="12", cppstd="20",
                 build_type="Release"):
        self.os = Value(os)
        self.arch = Value(arch)
        self.build_type = Value(build_type)
        self.compiler = Value(compiler)
        self.compiler.version = Value(compiler_version)
        self.compiler.cppstd = None if cppstd is None else Value(cppstd)
        self.compiler.libcxx = Value("libstdc++11")

    def get_safe(self, name, default=None):
        obj = self
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return default
        return obj


class EmptySettings:
    def get_safe(self, name, default=None):
        return default


class Options:
    def __init__(self, declared, values):
        object.__setattr__(self, "_declared", declared)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        values = object.__getattribute__(self, "_values")
        if name not in values:
            raise ConanException(f"option '{name}' doesn't exist (or was removed)")
        return values[name]

    def __setattr__(self, name, value):
        if name not in self._declared:
            raise ConanException(f"option '{name}' is not declared")
        if value not in self._declared[name]:
            raise ConanException(f"'{value}' is not a valid value for option '{name}'")
        self._values[name] = value

    def __delattr__(self, name):
        if name not in self._values:
            raise ConanException(f"option '{name}' doesn't exist (or was removed)")
        del self._values[name]

    def __contains__(self, name):
        return name in self._values

    def rm_safe(self, name):
        self._values.pop(name, None)

    def get_safe(self, name, default=None):
        return self._values.get(name, default)

    def as_dict(self):
        return dict(self._values)


class Info:
    def __init__(self, settings, options):
        self.settings = copymod.deepcopy(settings)
        self.options = Options(options._declared, options._values)
        self.cleared = False

    def clear(self):
        self.settings = EmptySettings()
        self.options = Options({}, {})
        self.cleared = True


class Calls(list):
    """self.requires / self.tool_requires: callable, and a list of (reference, traits)."""

    def __call__(self, ref, **traits):
        self.append((ref, traits))


class CppInfo:
    _list_fields = ("libs", "requires", "system_libs", "includedirs", "libdirs", "bindirs", "resdirs",
                    "builddirs", "srcdirs", "frameworkdirs", "frameworks", "defines", "cflags", "cxxflags",
                    "sharedlinkflags", "exelinkflags", "objects")

    def __init__(self, root):
        d = self.__dict__
        d["_properties"] = {}
        for field in self._list_fields:
            d[field] = []
        d["includedirs"] = ["include"]
        d["libdirs"] = ["lib"]
        d["bindirs"] = ["bin"]
        if root:
            d["components"] = Components()

    def __setattr__(self, name, value):
        # A typo (cpp_info.system_lib = ...) would go unnoticed by a permissive stand-in.
        if name not in self._list_fields:
            raise AttributeError(f"cpp_info has no field '{name}'")
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"cpp_info.{name} must be a list, got {type(value).__name__}")
        self.__dict__[name] = list(value)

    def set_property(self, name, value):
        self._properties[name] = value

    def get_property(self, name):
        return self._properties.get(name)


class Components(dict):
    def __missing__(self, name):
        self[name] = CppInfo(root=False)
        return self[name]


class Output:
    def __init__(self):
        self.lines = []

    def _log(self, level, msg):
        self.lines.append((level, str(msg)))

    def info(self, msg):
        self._log("info", msg)

    def warning(self, msg):
        self._log("warning", msg)

    def error(self, msg):
        self._log("error", msg)

    def debug(self, msg):
        self._log("debug", msg)

    success = highlight = verbose = trace = status = info


class ConanFile:
    name = None
    version = None
    package_type = None
    settings = ()
    options = {}
    default_options = {}
    generators = ()

    def __init__(self, settings=None, option_values=None, folders=None, version=None):
        cls = type(self)
        declared = {k: list(v) for k, v in dict(cls.options).items()}
        values = {k: v for k, v in dict(cls.default_options).items() if ":" not in k}
        values.update(option_values or {})
        for k in values:
            if k not in declared:
                raise ConanException(f"default or given option '{k}' is not declared in options")
        self.settings = settings or Settings()
        self.options = Options(declared, values)
        self.requires = Calls()
        self.tool_requires = Calls()
        self.test_requires = Calls()
        self.cpp_info = CppInfo(root=True)
        self.cpp = types.SimpleNamespace(build=types.SimpleNamespace(bindir="build/Release"))
        self.output = Output()
        self.info = None
        if version is not None:
            self.version = version
        self.ref = f"{cls.name}/{version}"
        self.tested_reference_str = None
        self.runs = []
        self.run_result = 0
        for key, value in (folders or {}).items():
            setattr(self, key, value)

    def run(self, command, env=None, ignore_errors=False, **kwargs):
        self.runs.append((command, env))
        if self.run_result != 0 and not ignore_errors:
            raise ConanException(f"'{command}' failed with {self.run_result}")
        return self.run_result


class CMakeToolchain:
    def __init__(self, conanfile):
        self.variables = {}
        self.cache_variables = {}
        self.preprocessor_definitions = {}

    def generate(self):
        FAKE.toolchains.append(self)


class CMakeDeps:
    def __init__(self, conanfile):
        pass

    def generate(self):
        FAKE.deps.append(self)


class CMake:
    def __init__(self, conanfile):
        self._conanfile = conanfile

    def configure(self, *args, **kwargs):
        FAKE.cmake_calls.append("configure")

    def build(self, *args, **kwargs):
        FAKE.cmake_calls.append("build")

    def install(self, *args, **kwargs):
        FAKE.cmake_calls.append("install")
        if FAKE.install_tree:
            shutil.copytree(FAKE.install_tree, self._conanfile.package_folder, dirs_exist_ok=True)


def cmake_layout(conanfile, generator=None, src_folder=".", build_folder="build"):
    FAKE.layouts.append(("cmake_layout", src_folder))


def tool_copy(conanfile, pattern, src, dst, keep_path=True, excludes=None, ignore_case=True,
              overwrite_equal=False):
    """conan.tools.files.copy: fnmatch on paths relative to src (so '*' spans folders)."""
    if pattern.startswith(".."):
        raise ConanException("copy() patterns may not start with '..'")
    if os.path.normpath(src) == os.path.normpath(dst):
        raise ConanException("copy() 'src' and 'dst' must differ")
    excludes = [excludes] if isinstance(excludes, str) else list(excludes or [])
    copied = []
    for root, _, files in os.walk(src):
        for f in files:
            rel = os.path.normpath(os.path.relpath(os.path.join(root, f), src))
            match = (lambda n, p: fnmatch.fnmatch(n.lower(), p.lower())) if ignore_case else fnmatch.fnmatchcase
            if not match(rel, pattern) or any(match(rel, e) for e in excludes):
                continue
            target = os.path.join(dst, rel if keep_path else f)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(root, f), target)
            copied.append(target)
    return copied


def tool_rmdir(conanfile, path):
    shutil.rmtree(path, ignore_errors=True)


def tool_rm(conanfile, pattern, folder, recursive=False, excludes=None):
    for root, dirs, files in os.walk(folder):
        for f in files:
            if fnmatch.fnmatch(f, pattern):
                os.remove(os.path.join(root, f))
        if not recursive:
            break


def tool_load(conanfile, path, encoding="utf-8"):
    with open(path, encoding=encoding) as f:
        return f.read()


def check_min_cppstd(conanfile, cppstd, gnu_extensions=False):
    """As Conan 2's: settings.compiler.cppstd must be set and (gnu stripped) at least cppstd."""
    if not str(cppstd).isdigit():
        raise ConanException("cppstd parameter must be a number")

    def year(v):
        v = str(v).replace("gnu", "")
        return int("19" + v if v == "98" else "20" + v)

    current = conanfile.settings.get_safe("compiler.cppstd")
    if current is None:
        raise ConanInvalidConfiguration("The compiler.cppstd is not defined for this configuration")
    if gnu_extensions and "gnu" not in current:
        raise ConanInvalidConfiguration("The cppstd GNU extension is required")
    if year(current) < year(cppstd):
        raise ConanInvalidConfiguration(
            f"Current cppstd ({current}) is lower than the required C++ standard ({cppstd}).")


def valid_min_cppstd(conanfile, cppstd, gnu_extensions=False):
    try:
        check_min_cppstd(conanfile, cppstd, gnu_extensions)
    except ConanInvalidConfiguration:
        return False
    return True


@functools.total_ordering
class Version:
    def __init__(self, value):
        self._text = str(value)
        self._key = tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-+]", self._text))

    def _other(self, other):
        return other if isinstance(other, Version) else Version(other)

    def __eq__(self, other):
        return self._key == self._other(other)._key

    def __lt__(self, other):
        return self._key < self._other(other)._key

    def __hash__(self):
        return hash(self._key)

    def __str__(self):
        return self._text

    @property
    def major(self):
        return self._key[0]


def install_fake_conan():
    def module(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, m)
        return m

    module("conan", ConanFile=ConanFile, __path__=[])
    module("conan.errors", ConanException=ConanException, ConanInvalidConfiguration=ConanInvalidConfiguration)
    module("conan.tools", __path__=[])
    module("conan.tools.cmake", CMake=CMake, CMakeToolchain=CMakeToolchain, CMakeDeps=CMakeDeps,
           cmake_layout=cmake_layout)
    module("conan.tools.files", copy=tool_copy, rmdir=tool_rmdir, rm=tool_rm, load=tool_load)
    module("conan.tools.build", check_min_cppstd=check_min_cppstd, valid_min_cppstd=valid_min_cppstd,
           can_run=lambda conanfile: FAKE.can_run, cross_building=lambda conanfile, **kw: False)
    module("conan.tools.scm", Version=Version)


def load_recipe(path, module_name):
    spec = importlib.util.spec_from_file_location(module_name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    classes = [c for c in vars(mod).values()
               if inspect.isclass(c) and issubclass(c, ConanFile) and c is not ConanFile
               and c.__module__ == module_name]
    if len(classes) != 1:
        raise SystemExit(f"conan_recipe.py: {path} defines {len(classes)} ConanFile classes, expected one")
    return classes[0]


# --------------------------------------------------------------------------------------------
# Reading the project
# --------------------------------------------------------------------------------------------


def parse_exported_targets(targets_file):
    """{target: {"type", "links", "headers"}} from an install(EXPORT) file, plus the archives its
    per-configuration files import ({target: [file name]})."""
    text = targets_file.read_text()
    targets = {}
    for m in re.finditer(r"^add_library\((ksvc::\w+) (\w+) IMPORTED\)", text, re.M):
        targets[m.group(1)] = {"type": m.group(2), "links": [], "headers": set(), "features": []}
    for m in re.finditer(r"^set_target_properties\((ksvc::\w+) PROPERTIES\n(.*?)^\)", text, re.M | re.S):
        if m.group(1) not in targets:
            continue
        links = re.search(r'INTERFACE_LINK_LIBRARIES "([^"]*)"', m.group(2))
        if links:
            # $<LINK_ONLY:x> marks a static library's private dependency: still a requirement.
            targets[m.group(1)]["links"] = [re.sub(r"^\$<LINK_ONLY:(.*)>$", r"\1", x)
                                            for x in links.group(1).split(";") if x]
        features = re.search(r'INTERFACE_COMPILE_FEATURES "([^"]*)"', m.group(2))
        if features:
            targets[m.group(1)]["features"] = features.group(1).split(";")
    for m in re.finditer(r"target_sources\((ksvc::\w+)\s+INTERFACE\s+FILE_SET \"HEADERS\".*?FILES (.*?)\n", text, re.S):
        targets[m.group(1)]["headers"] = set(re.findall(r'"\$\{_IMPORT_PREFIX\}/include/([^"]+)"', m.group(2)))
    archives = {}
    for cfg in targets_file.parent.glob(targets_file.stem + "-*.cmake"):
        for m in re.finditer(r'set_target_properties\((ksvc::\w+) PROPERTIES(.*?)\)', cfg.read_text(), re.S):
            for loc in re.findall(r'IMPORTED_LOCATION_\w+ "([^"]+)"', m.group(2)):
                archives.setdefault(m.group(1), []).append(os.path.basename(loc))
    return targets, archives


# Targets outside the ksvc:: namespace that ksvcTargets.cmake links, as the recipe expresses them:
# ("requires", "<package>::<component>") or ("system_libs", "<lib>").
FOREIGN_TARGETS = {
    "Threads::Threads": ("system_libs", "pthread"),
    "liburing::liburing": ("requires", "liburing::liburing"),
    "Boost::headers": ("requires", "boost::headers"),
}


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, ok, message):
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)
        return ok

    def equal(self, what, got, expected):
        return self.check(got == expected, f"{what}: recipe has {got!r}, expected {expected!r}")


class Hidden:
    def __init__(self, name, method):
        self._what = f"self.{name} is not available in {method}() (Conan hides it there; use self.info.{name})"

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ConanException(self._what)


@contextlib.contextmanager
def hidden(obj, method, *names):
    """Conan hides self.settings/self.options in package_id(); so does this."""
    saved = {n: obj.__dict__[n] for n in names}
    obj.__dict__.update({n: Hidden(n, method) for n in names})
    try:
        yield
    finally:
        obj.__dict__.update(saved)


def configured(recipe, version, folders, options=None, **settings):
    """A recipe instance taken through config_options .. package_id, as `conan create` would."""
    FAKE.reset()
    cf = recipe(Settings(**settings), options, folders, version=version)
    cf.config_options()
    cf.configure()
    cf.layout()
    cf.requirements()
    if hasattr(cf, "build_requirements"):
        cf.build_requirements()
    cf.info = Info(cf.settings, cf.options)
    return cf


def validate_error(cf):
    try:
        cf.validate()
    except ConanInvalidConfiguration as e:
        return str(e) or "ConanInvalidConfiguration"
    return None


def ref_name(ref):
    return ref.split("/", 1)[0]


def ref_version(ref):
    return ref.split("/", 1)[1].split("@")[0] if "/" in ref else ""


def tree(folder):
    root = Path(folder)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", required=True, type=Path)
    ap.add_argument("--version", required=True, help="the version CMake's project() declares")
    ap.add_argument("--work-dir", required=True, type=Path)
    ap.add_argument("--cmake", required=True)
    ap.add_argument("--install-from", type=Path,
                    help="a build tree whose dev component to `cmake --install` into <work-dir>/prefix first")
    ap.add_argument("--generator")
    ap.add_argument("--cxx")
    args = ap.parse_args()

    recipe_path = args.recipe.resolve()
    source_dir = recipe_path.parent.parent
    work = args.work_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    prefix = work / "prefix"
    if args.install_from:
        # The dev component is what the Conan package holds (the tools are not built there).
        install = [args.cmake, "--install", str(args.install_from), "--prefix", str(prefix), "--component", "dev"]
        result = subprocess.run(install, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"conan_recipe.py: {' '.join(install)} failed:\n{result.stdout}{result.stderr}")
    targets_file = prefix / "lib" / "cmake" / "ksvc" / "ksvcTargets.cmake"
    if not targets_file.is_file():
        raise SystemExit(f"conan_recipe.py: no {targets_file}: install a build tree there (--install-from)")
    libdir = targets_file.parents[2]
    exported, archives = parse_exported_targets(targets_file)
    if not exported:
        raise SystemExit(f"conan_recipe.py: no add_library(ksvc::... IMPORTED) in {targets_file}")

    install_fake_conan()
    recipe = load_recipe(recipe_path, "ksvc_recipe")
    c = Checks()

    cmakelists = (source_dir / "CMakeLists.txt").read_text()
    project = re.search(r'project\(\s*ksvc\s+VERSION\s+(\S+)\s+DESCRIPTION\s+"([^"]*)"', cmakelists)
    copyright_text = (source_dir / "cmake" / "debian" / "copyright").read_text()
    license_id = re.search(r"^License:\s*(\S+)", copyright_text, re.M).group(1)
    upstream = re.search(r"^Source:\s*(\S+)", copyright_text, re.M).group(1)
    folders = {"recipe_folder": str(recipe_path.parent), "export_sources_folder": str(work / "export"),
               "source_folder": str(work / "export"), "build_folder": str(work / "build")}

    # --- metadata ---------------------------------------------------------------------------
    c.equal("name", recipe.name, "ksvc")
    c.check(recipe.version is None, f"version: the recipe hard-codes {recipe.version!r}; set_version() should read it")
    cf = recipe(Settings(), None, folders)
    cf.set_version()
    c.equal("set_version()", cf.version, args.version)
    c.equal("set_version() against project() in CMakeLists.txt", cf.version, project.group(1))
    version = cf.version
    c.equal("description (project DESCRIPTION)", recipe.description, project.group(2))
    c.equal("license (cmake/debian/copyright)", recipe.license, license_id)
    c.equal("homepage (Source: in cmake/debian/copyright)", recipe.homepage, upstream)
    c.check(bool(getattr(recipe, "url", None)), "url is missing")
    topics = tuple(getattr(recipe, "topics", None) or ())
    c.check(len(topics) >= 3, f"topics: {topics!r}, expected a few")
    c.check(not {"conan", "ksvc"} & set(topics), f"topics {topics!r} repeat 'conan' or the name (CCI)")
    c.equal("settings", set(recipe.settings), {"os", "arch", "compiler", "build_type"})
    c.equal("options", {k: sorted(v) for k, v in recipe.options.items()},
            {"header_only": [False, True], "fPIC": [False, True], "io_uring_probe": [False, True]})
    c.equal("default_options", dict(recipe.default_options),
            {"header_only": False, "fPIC": True, "io_uring_probe": True, "boost/*:header_only": True})

    # --- the two modes: options, requirements, package_id, validate -------------------------------
    default = configured(recipe, version, folders)
    header_only = configured(recipe, version, folders, {"header_only": True})
    c.equal("package_type (default)", str(default.package_type), "static-library")
    c.equal("package_type (header_only)", str(header_only.package_type), "header-library")
    c.check("fPIC" in default.options, "fPIC was removed in the default mode")
    c.check("fPIC" not in header_only.options, "fPIC is still there with header_only=True")

    reqs = {ref_name(r): (ref_version(r), t) for r, t in default.requires}
    c.equal("requirements (default)", sorted(reqs), ["boost", "liburing"])
    if "liburing" in reqs:
        c.check(re.fullmatch(r"2\.\d+", reqs["liburing"][0]) is not None,
                f"liburing/{reqs['liburing'][0]}: expected 2.x")
    if "boost" in reqs:
        c.check(re.fullmatch(r"1\.74\.\d+", reqs["boost"][0]) is not None, f"boost/{reqs['boost'][0]}: expected 1.74.x")
    for name, (_, traits) in reqs.items():
        # ksvc::module's public headers include <liburing.h> and Boost.Hana.
        c.check(traits.get("transitive_headers") is True, f"requires('{name}/...') without transitive_headers=True")
    c.equal("requirements (header_only)", [r for r, _ in header_only.requires], [])
    c.check(any(ref_name(r) == "cmake" for r, _ in default.tool_requires),
            "build_requirements(): no cmake tool requirement (the project needs CMake 3.25)")
    c.equal("tool requirements (header_only)", [r for r, _ in header_only.tool_requires], [])

    for cf in (default, header_only):
        with hidden(cf, "package_id", "settings", "options"):
            cf.package_id()
    c.check(not default.info.cleared, "package_id() cleared the default package's settings")
    c.check(header_only.info.cleared, "package_id() does not clear settings/options with header_only=True")

    # The standard consumers must compile with, as the installed targets ask for it.
    features = [f for t in exported.values() for f in t["features"] if f.startswith("cxx_std_")]
    std = max((int(f[len("cxx_std_"):]) for f in features), default=20)
    older = {20: "17", 23: "20", 26: "23"}.get(std, "17")
    for options in (None, {"header_only": True}):
        mode = "header_only" if options else "default"
        ok = [dict(cppstd=str(std)), dict(cppstd=f"gnu{std}"), dict(cppstd=str(std), compiler_version="13")]
        bad = [dict(os="Windows"), dict(os="Macos", compiler="apple-clang", compiler_version="15"),
               dict(cppstd=older), dict(cppstd=f"gnu{older}"), dict(cppstd=None), dict(compiler_version="11")]
        for s in ok:
            err = validate_error(configured(recipe, version, folders, options, **s))
            c.check(err is None, f"validate() ({mode}, {s}) refuses a supported configuration: {err}")
        for s in bad:
            c.check(validate_error(configured(recipe, version, folders, options, **s)) is not None,
                    f"validate() ({mode}, {s}) accepts it; expected ConanInvalidConfiguration")

    # --- generate(): the project's own options --------------------------------------------------
    FAKE.reset()
    cf = configured(recipe, version, folders)
    cf.generate()
    c.equal("CMakeToolchain generated (default)", len(FAKE.toolchains), 1)
    c.equal("CMakeDeps generated (default)", len(FAKE.deps), 1)
    cmake_vars = {}
    for tc in FAKE.toolchains:
        cmake_vars.update(tc.variables)
        cmake_vars.update(tc.cache_variables)
    project_options = re.findall(r"^option\((KSVC_\w+)", (source_dir / "cmake" / "KsvcOptions.cmake").read_text(), re.M)
    for opt in project_options:
        c.check(opt in cmake_vars, f"generate() leaves {opt} to the project's default (cmake/KsvcOptions.cmake)")
    for opt in ("KSVC_BUILD_TESTS", "KSVC_BUILD_EXAMPLES", "KSVC_BUILD_BENCHMARKS", "KSVC_DEV_WERROR"):
        c.check(opt in cmake_vars and cmake_vars[opt] in (False, "OFF"),
                f"generate(): {opt} = {cmake_vars.get(opt)!r}, expected False")
    c.equal("generate(): KSVC_BUILD_IO_URING_PROBE follows io_uring_probe (default)",
            cmake_vars.get("KSVC_BUILD_IO_URING_PROBE"), True)
    FAKE.reset()
    no_probe = configured(recipe, version, folders, {"io_uring_probe": False})
    no_probe.generate()
    c.equal("generate(): KSVC_BUILD_IO_URING_PROBE with io_uring_probe=False",
            {k: v for tc in FAKE.toolchains for k, v in tc.cache_variables.items()}.get("KSVC_BUILD_IO_URING_PROBE"), False)
    for var in cmake_vars:
        c.check(var in project_options or not var.startswith("KSVC_"),
                f"generate() sets {var}, which cmake/KsvcOptions.cmake does not declare")

    # --- export_sources(): a tree CMake can configure with those variables ------------------------
    cf.export_sources()
    exported_tree = work / "export"
    for f in ("CMakeLists.txt", "cmake/debian/copyright", "core/CMakeLists.txt", "executor/CMakeLists.txt",
              "module/CMakeLists.txt"):
        c.check((exported_tree / f).is_file(), f"export_sources() does not export {f}")
    configure = [args.cmake, "-S", str(exported_tree), "-B", str(work / "export-build"), "-DCMAKE_BUILD_TYPE=Release"]
    if args.generator:
        configure += ["-G", args.generator]
    if args.cxx:
        configure.append(f"-DCMAKE_CXX_COMPILER={args.cxx}")
    for k, v in cmake_vars.items():
        configure.append(f"-D{k}={('ON' if v else 'OFF') if isinstance(v, bool) else v}")
    result = subprocess.run(configure, capture_output=True, text=True)
    log = result.stdout + result.stderr
    c.check(result.returncode == 0, "the exported sources do not configure with generate()'s variables:\n    "
            + " ".join(configure) + "\n    " + log.strip().replace("\n", "\n    "))
    c.check("Manually-specified variables were not used" not in log,
            "generate() passes variables the project does not use:\n    " + log.strip().replace("\n", "\n    "))

    # --- package(): license, removals, the header-only tree --------------------------------------
    FAKE.install_tree = str(prefix)
    packages = {}
    for mode, options in (("default", None), ("header_only", {"header_only": True})):
        pkg = work / f"package-{mode}"
        cf = configured(recipe, version, dict(folders, package_folder=str(pkg)), options)
        cf.build()
        cf.package()
        packages[mode] = tree(pkg)
        c.check((pkg / "licenses" / "copyright").is_file()
                and (pkg / "licenses" / "copyright").read_text() == copyright_text,
                f"package() ({mode}): licenses/copyright is not cmake/debian/copyright")
        if mode == "default":
            c.equal("build() + package() CMake calls (default)", FAKE.cmake_calls, ["configure", "build", "install"])
            for gone in ("lib/cmake", "lib/pkgconfig", "share"):
                c.check(not (pkg / gone).exists(), f"package() (default) keeps {gone} (Conan generates its own)")
        else:
            c.equal("build() + package() CMake calls (header_only)", FAKE.cmake_calls, [])
    # header_only=True ships exactly the headers of the INTERFACE (header-only) targets.
    interface = sorted(t for t, d in exported.items() if d["type"] == "INTERFACE" and t != "ksvc::ksvc")
    expected_headers = {"include/" + h for t in interface for h in exported[t]["headers"]}
    got_headers = {f for f in packages["header_only"] if f.startswith("include/")}
    c.check(expected_headers and got_headers == expected_headers,
            "package() (header_only): include/ differs from the headers of "
            f"{', '.join(interface)} in ksvcTargets.cmake; missing {sorted(expected_headers - got_headers)}, "
            f"extra {sorted(got_headers - expected_headers)}")
    c.equal("package() (header_only): files outside include/ and licenses/",
            sorted(f for f in packages["header_only"] if not f.startswith(("include/", "licenses/"))), [])

    # --- package_info() against ksvcTargets.cmake -----------------------------------------------
    for mode, options in (("default", None), ("header_only", {"header_only": True})):
        cf = configured(recipe, version, dict(folders, package_folder=str(work / f"package-{mode}")), options)
        cf.package_info()
        info = cf.cpp_info
        comps = info.components
        c.equal(f"cmake_file_name ({mode})", info.get_property("cmake_file_name"), "ksvc")
        c.equal(f"cmake_target_name ({mode})", info.get_property("cmake_target_name"), "ksvc::ksvc")
        c.equal(f"pkg_config_name ({mode})", info.get_property("pkg_config_name"), "ksvc")
        c.equal(f"root cpp_info.libs ({mode}; the components carry them)", info.libs, [])
        wanted = {"core", "executor", "module"} if mode == "default" else {"core", "executor"}
        c.equal(f"components ({mode})", set(comps), wanted)
        names = {n: comp.get_property("cmake_target_name") for n, comp in comps.items()}
        for n, target in names.items():
            c.equal(f"components['{n}'] cmake_target_name ({mode})", target, f"ksvc::{n}")
            c.check(target in exported,
                    f"components['{n}'] ({mode}) is {target}, which ksvcTargets.cmake does not export")
        by_target = {t: n for n, t in names.items()}
        if mode == "header_only":
            c.equal("header_only components' targets (the INTERFACE targets of ksvcTargets.cmake)",
                    sorted(by_target), interface)
        else:
            for target in exported:
                if target != "ksvc::ksvc":
                    c.check(target in by_target, f"ksvcTargets.cmake exports {target}, which no component provides")
            # Conan's ksvc::ksvc is every component; the project's must be the same.
            c.equal("the components' targets vs what ksvc::ksvc links in ksvcTargets.cmake",
                    sorted(by_target), sorted(exported.get("ksvc::ksvc", {}).get("links", [])))

        for target, n in by_target.items():
            comp = comps[n]
            if target not in exported:
                continue
            want_requires, want_system = set(), set()
            for link in exported[target]["links"]:
                if link.startswith("ksvc::"):
                    want_requires.add(link[len("ksvc::"):])
                elif link in FOREIGN_TARGETS:
                    kind, value = FOREIGN_TARGETS[link]
                    (want_requires if kind == "requires" else want_system).add(value)
                else:
                    c.check(False, f"ksvcTargets.cmake: {target} links {link}, which conan_recipe.py cannot map "
                                   "to a Conan requirement (add it to FOREIGN_TARGETS, and to the recipe)")
            c.equal(f"components['{n}'].requires ({mode}) vs {target}'s INTERFACE_LINK_LIBRARIES",
                    set(comp.requires), want_requires)
            c.equal(f"components['{n}'].system_libs ({mode}) vs {target}'s INTERFACE_LINK_LIBRARIES",
                    set(comp.system_libs), want_system)
            for req in comp.requires:
                if "::" in req:
                    c.check(ref_name(req.split("::")[0]) in reqs,
                            f"components['{n}'] requires {req}, "
                            f"but requirements() does not require {req.split('::')[0]}")
            libs = [f"lib{lib}.a" for lib in comp.libs]
            c.equal(f"components['{n}'].libs ({mode}) vs the archive ksvcTargets imports for {target}",
                    sorted(libs), sorted(archives.get(target, [])))
            for lib in libs:
                c.check((libdir / lib).is_file(), f"components['{n}'].libs: {libdir / lib} is not installed")
            if exported[target]["type"] == "INTERFACE":
                c.check(comp.libs == [] and comp.libdirs == [] and comp.bindirs == [],
                        f"components['{n}'] ({mode}) is header-only but has libs/libdirs/bindirs "
                        f"{comp.libs}/{comp.libdirs}/{comp.bindirs}")
            if mode == "header_only":
                c.check(comp.libdirs == [] and comp.libs == [],
                        f"components['{n}'] (header_only) has libs/libdirs {comp.libs}/{comp.libdirs}")
        if mode == "default":
            # Every archive the install tree has belongs to a component.
            packaged = {f"lib{lib}.a" for comp in comps.values() for lib in comp.libs}
            for archive in sorted(p.name for p in libdir.glob("lib*.a")):
                c.check(archive in packaged, f"{libdir / archive} is installed but no component lists it in libs")

    # --- test_package/conanfile.py ----------------------------------------------------------------
    tp_path = recipe_path.parent / "test_package" / "conanfile.py"
    test_recipe = load_recipe(tp_path, "ksvc_test_package")
    c.equal("test_package generators", set(test_recipe.generators), {"CMakeDeps", "CMakeToolchain"})
    for rc, can_run, should_raise, should_run in ((0, True, False, True), (77, True, False, True),
                                                   (1, True, True, True), (0, False, False, False)):
        FAKE.reset()
        FAKE.can_run = can_run
        tp = test_recipe(Settings(), None, {})
        tp.tested_reference_str = f"ksvc/{version}"
        tp.layout()
        tp.requirements()
        c.equal("test_package requirements", [r for r, _ in tp.requires], [f"ksvc/{version}"])
        tp.run_result = rc
        try:
            tp.test()
            raised = False
        except ConanException:
            raised = True
        c.check(raised == should_raise,
                f"test_package test(): exit {rc} {'does not raise' if should_raise else 'raises'}")
        c.check(bool(tp.runs) == should_run, f"test_package test() with can_run={can_run} ran {tp.runs}")
        if tp.runs:
            c.check(os.path.basename(tp.runs[0][0]) == "test_package", f"test_package test() runs {tp.runs[0][0]}")
    FAKE.can_run = True
    tp_cmake = (recipe_path.parent / "test_package" / "CMakeLists.txt").read_text()
    c.check(re.search(r"project\(test_package\b", tp_cmake) and "add_executable(${PROJECT_NAME}" in tp_cmake,
            "test_package/CMakeLists.txt does not build the executable test() runs (test_package)")

    if c.failures:
        print(f"conan_recipe.py: {len(c.failures)} of {len(c.failures) + c.passed} checks disagree:")
        for f in c.failures:
            print("  - " + f)
        return 1
    print(f"conan_recipe.py: {c.passed} checks agree: {recipe_path} (ksvc/{version}; "
          f"components {', '.join(sorted(exported))} in {targets_file})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a recipe method that raises: name it and where
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "conan/" in f.filename.replace(os.sep, "/")]
        where = f" in {frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name}())" if frames else ""
        print(f"conan_recipe.py: {type(e).__name__}: {e}{where}")
        traceback.print_exc()
        sys.exit(1)
