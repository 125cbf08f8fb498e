#pragma once
#include <charconv>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ksvc {

struct kernel_version {
    std::uint16_t major = 0;
    std::uint16_t minor = 0;
    std::uint16_t patch = 0;
    friend constexpr auto operator<=>(const kernel_version&, const kernel_version&) = default;

    //! Parses "X.Y" or "X.Y.Z" with any suffix after the numbers ("6.18.44-fc-v657").
    static constexpr std::optional<kernel_version> parse(std::string_view s) noexcept {
        kernel_version v;
        std::uint16_t* parts[] = {&v.major, &v.minor, &v.patch};
        const char* p = s.data();
        const char* end = s.data() + s.size();
        for (int i = 0; i < 3; ++i) {
            std::uint16_t n = 0;
            auto [next, ec] = std::from_chars(p, end, n);
            if (ec != std::errc{}) {
                if (i < 2) return std::nullopt; // major and minor are required
                break;
            }
            *parts[i] = n;
            p = next;
            if (p == end || *p != '.') {
                if (i == 0) return std::nullopt;
                break;
            }
            ++p;
        }
        return v;
    }

    std::string to_string() const {
        return std::to_string(major) + '.' + std::to_string(minor) + '.' + std::to_string(patch);
    }
};

} // namespace ksvc
