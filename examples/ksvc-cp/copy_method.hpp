#pragma once
// ksvc-cp's copy methods and the choice `--method auto` makes. The rule follows the table
// measured on this project's machine (docs/how-to/ksvc-cp.md, "Choosing a method").
#include <cstdint>
#include <optional>
#include <string_view>

namespace ksvc_cp {

enum class method { automatic, rw, splice, copy_file_range };

inline std::optional<method> parse_method(std::string_view s) {
    if (s == "auto") return method::automatic;
    if (s == "rw") return method::rw;
    if (s == "splice") return method::splice;
    if (s == "copy_file_range") return method::copy_file_range;
    return std::nullopt;
}

//! The method for one file of `size` bytes. copy_file_range moves the pages inside the kernel
//! (no copy through user space) and is one call per file, so it wins wherever the kernel
//! accepts the pair; across filesystems the kernel refuses it with EXDEV and the copy falls
//! back to rw.
inline method choose(std::uint64_t size, bool same_filesystem) {
    (void)size;
    return same_filesystem ? method::copy_file_range : method::rw;
}

} // namespace ksvc_cp
