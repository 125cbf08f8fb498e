#include <ksvc/module/profiles/kernel_profile.hpp>

namespace ksvc {

std::string profile_shortfall(const capabilities& running, kernel_version promised, const opcode_set& opcodes,
                              std::uint32_t setup_flags, std::uint32_t features) {
    const std::string target = std::to_string(promised.major) + "." + std::to_string(promised.minor);
    if (!running.io_uring_available)
        return "the profile for " + target + " needs io_uring, which is unavailable here: " + running.unavailable_reason;
    std::string missing_ops, missing_flags, missing_features;
    auto add = [](std::string& list, std::string_view name) {
        list += list.empty() ? "" : ", ";
        list += name;
    };
    for (const opcode_info& o : opcode_table)
        if (opcodes.has(o.op) && !running.has(o.op)) add(missing_ops, o.name);
    for (const auto& f : setup_flag::table)
        if ((setup_flags & f.bit) && !running.has_setup_flag(f.bit)) add(missing_flags, f.name);
    for (const auto& f : ring_feature::table)
        if ((features & f.bit) && !running.has_feature(f.bit)) add(missing_features, f.name);
    if (missing_ops.empty() && missing_flags.empty() && missing_features.empty()) return {};
    std::string s = "kernel " + running.version.to_string() + " lacks what the profile for " + target + " promises:";
    if (!missing_ops.empty()) s += " opcodes " + missing_ops + ";";
    if (!missing_flags.empty()) s += " setup flags " + missing_flags + ";";
    if (!missing_features.empty()) s += " features " + missing_features + ";";
    s.pop_back();
    return s;
}

} // namespace ksvc
