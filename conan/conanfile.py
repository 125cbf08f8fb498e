import os
import re

from conan import ConanFile
from conan.errors import ConanException, ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir
from conan.tools.scm import Version

required_conan_version = ">=2.0.9"


class KsvcConan(ConanFile):
    name = "ksvc"
    # No `version` attribute: set_version() reads it from project() so the two cannot drift.
    description = "Routes Linux system calls to the cheapest safe path"
    # No licence has been chosen yet (cmake/debian/copyright): all rights reserved.
    license = "LicenseRef-ksvc-reserved"
    # The recipe lives in the project's repository, not in conan-center-index, so url points
    # there; a submission to Conan Center would set it to conan-center-index.
    url = "https://github.com/ksvc/ksvc"
    homepage = "https://github.com/ksvc/ksvc"
    topics = ("io-uring", "liburing", "syscalls", "linux", "asynchronous-io")
    package_type = "static-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "header_only": [True, False],
        "fPIC": [True, False],
        # False: the library never calls io_uring_setup (platforms whose seccomp filter kills on
        # io_uring); every instance serves through the epoll backend.
        "io_uring_probe": [True, False],
    }
    default_options = {
        "header_only": False,
        "fPIC": True,
        "io_uring_probe": True,
        # ksvc::module uses Boost.Hana only, which is header-only.
        "boost/*:header_only": True,
    }

    # The components that are header-only in every mode, and all that header_only=True packages.
    _header_only_components = ("core", "executor")

    @property
    def _min_cppstd(self):
        return 20

    @property
    def _compilers_minimum_version(self):
        # README.md: "GCC 12 or newer". Other compilers are not tested, hence not listed.
        return {"gcc": "12"}

    @property
    def _repo_root(self):
        # The recipe is in conan/ inside the source tree it packages (no source() download).
        return os.path.join(self.recipe_folder, "..")

    def set_version(self):
        cmakelists = load(self, os.path.join(self._repo_root, "CMakeLists.txt"))
        match = re.search(r"project\(\s*ksvc\s+VERSION\s+(\d+\.\d+\.\d+)", cmakelists)
        if not match:
            raise ConanException("ksvc: no 'project(ksvc VERSION x.y.z' in the top-level CMakeLists.txt")
        self.version = match.group(1)

    def export_sources(self):
        # Only what a library build reads: tests, examples and benchmarks are switched off in
        # generate(), so their folders are not exported.
        copy(self, "CMakeLists.txt", src=self._repo_root, dst=self.export_sources_folder)
        for folder in ("cmake", "core", "executor", "module"):
            copy(self, "*", src=os.path.join(self._repo_root, folder),
                 dst=os.path.join(self.export_sources_folder, folder))

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.header_only:
            self.options.rm_safe("fPIC")
            self.package_type = "header-library"

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        if self.options.header_only:
            return  # ksvc::core and ksvc::executor include only the standard library and Linux headers
        # Public headers of ksvc::module include <liburing.h> and Boost.Hana: consumers need both.
        self.requires("liburing/2.3", transitive_headers=True)
        self.requires("boost/1.74.0", transitive_headers=True)

    def build_requirements(self):
        if not self.options.header_only:
            self.tool_requires("cmake/[>=3.25 <4]")  # cmake_minimum_required(VERSION 3.25)

    def package_id(self):
        if self.info.options.header_only:
            self.info.clear()

    def validate(self):
        if self.settings.os != "Linux":
            raise ConanInvalidConfiguration(
                f"{self.ref} supports Linux only (it drives io_uring and Linux system calls)")
        check_min_cppstd(self, self._min_cppstd)
        minimum_version = self._compilers_minimum_version.get(str(self.settings.compiler), False)
        if minimum_version and Version(self.settings.compiler.version) < minimum_version:
            raise ConanInvalidConfiguration(
                f"{self.ref} needs {self.settings.compiler} {minimum_version} or newer for its C++"
                f"{self._min_cppstd}; this is {self.settings.compiler.version}")

    def generate(self):
        if self.options.header_only:
            return  # nothing is configured: package() copies the headers
        tc = CMakeToolchain(self)
        # Tests, examples and -Werror default to ON when ksvc is the top-level project, as here;
        # benchmarks would need Google Benchmark.
        tc.cache_variables["KSVC_BUILD_TESTS"] = False
        tc.cache_variables["KSVC_BUILD_EXAMPLES"] = False
        tc.cache_variables["KSVC_BUILD_BENCHMARKS"] = False
        # A newer compiler's new warning must not break a consumer's build.
        tc.cache_variables["KSVC_DEV_WERROR"] = False
        tc.cache_variables["KSVC_BUILD_IO_URING_PROBE"] = bool(self.options.io_uring_probe)
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        if self.options.header_only:
            return
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "copyright", src=os.path.join(self.source_folder, "cmake", "debian"),
             dst=os.path.join(self.package_folder, "licenses"))
        if self.options.header_only:
            # Header-only mode builds nothing: the headers of core/ and executor/ are copied as
            # `cmake --install` would lay them out (include/ksvc/<component>/...).
            for component in self._header_only_components:
                copy(self, "*.hpp", src=os.path.join(self.source_folder, component, "include"),
                     dst=os.path.join(self.package_folder, "include"))
            return
        cmake = CMake(self)
        cmake.install()
        # Conan generates its own CMake and pkg-config files from package_info(); share/ holds
        # only the Debian copyright and changelog, already covered by licenses/.
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        # The same names as the project's own CMake package (lib/cmake/ksvc/ksvcTargets.cmake),
        # so find_package(ksvc) + ksvc::ksvc work with either.
        self.cpp_info.set_property("cmake_file_name", "ksvc")
        self.cpp_info.set_property("cmake_target_name", "ksvc::ksvc")
        self.cpp_info.set_property("pkg_config_name", "ksvc")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "ksvc::core")
        core.bindirs = []
        core.libdirs = []

        executor = self.cpp_info.components["executor"]
        executor.set_property("cmake_target_name", "ksvc::executor")
        executor.requires = ["core"]
        executor.system_libs = ["pthread"]
        executor.bindirs = []
        executor.libdirs = []

        if self.options.header_only:
            return
        module = self.cpp_info.components["module"]
        module.set_property("cmake_target_name", "ksvc::module")
        module.libs = ["ksvc_module"]
        module.requires = ["executor", "liburing::liburing", "boost::headers"]
        module.system_libs = ["pthread"]
        module.bindirs = []
