#pragma once
// The kernels every suite that injects a capability snapshot runs under: io_uring's first
// release, the long-term kernels, the releases that changed what ksvc can use (5.19 coop
// taskrun and multishot accept, 6.11 bind/listen), and this one.
#include <array>
#include <ostream>

#include <ksvc/core/kernel_version.hpp>

namespace ksvc::test {
inline constexpr std::array<kernel_version, 9> snapshot_kernels = {{
    {5, 1}, {5, 10}, {5, 15}, {5, 19}, {6, 1}, {6, 6}, {6, 11}, {6, 12}, {6, 18},
}};
} // namespace ksvc::test

namespace ksvc {
inline std::ostream& operator<<(std::ostream& os, const kernel_version& v) { return os << v.to_string(); }
} // namespace ksvc
