// ksvc-probe — what this kernel's io_uring offers and where ksvc routes every system call.
//
//   ksvc-probe                      human-readable report (capabilities + route table by tier)
//   ksvc-probe --table              the route table one syscall per line (nr, name, tier, opcode,
//                                   and which backend serves it under each preset)
//   ksvc-probe --json               exactly one JSON object on stdout
//   ksvc-probe --assume-kernel 6.1  the model of a 6.1 kernel (ksvc::capabilities::for_kernel)
//   ksvc-probe --emit-profile [--profile-name N]
//                                   a C++ header describing this kernel (a kernel_profile) for
//                                   static_router / embedded_instance builds that target it
//
// Exit status: 0 on success, 2 on a usage error (bad option or version).
#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <ksvc/core/core.hpp>
#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/presets.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/profiles/kernel_profile.hpp>
#include <ksvc/module/routers/probe_router.hpp>

namespace {

struct options {
    bool json = false;
    bool table = false;
    bool emit_profile = false;
    std::string profile_name = "target_kernel";
    std::optional<std::string> assume;
};

void usage(std::ostream& os) {
    os << "usage: ksvc-probe [--json] [--table] [--emit-profile [--profile-name NAME]] [--assume-kernel X.Y[.Z]]\n"
          "  --json               print one JSON object (kernel, io_uring_available, features, routes)\n"
          "  --table              print the route table one syscall per line\n"
          "  --emit-profile       print a C++ header describing this kernel (version, opcodes, setup\n"
          "                       flags, features): a kernel_profile for static_router<P> and\n"
          "                       embedded_instance<P> builds that target this kernel\n"
          "  --profile-name NAME  the profile struct's name (default target_kernel)\n"
          "  --assume-kernel X.Y  show what a kernel of version X.Y would get (pure model,\n"
          "                       ksvc::capabilities::for_kernel; nothing is probed)\n";
}

[[noreturn]] void usage_error(const std::string& msg) {
    std::cerr << "ksvc-probe: " << msg << "\n";
    usage(std::cerr);
    std::exit(2);
}

// Strict X.Y or X.Y.Z (kernel_version::parse tolerates suffixes such as "-generic"; a user
// typing --assume-kernel deserves an error for "6.1x" rather than a silent 6.1).
std::optional<ksvc::kernel_version> parse_strict(std::string_view s) {
    int dots = 0;
    bool digit_run = false;
    for (char c : s) {
        if (c >= '0' && c <= '9') {
            digit_run = true;
        } else if (c == '.' && digit_run) {
            ++dots;
            digit_run = false;
        } else {
            return std::nullopt;
        }
    }
    if (!digit_run || dots < 1 || dots > 2) return std::nullopt;
    return ksvc::kernel_version::parse(s); // nullopt on out-of-range numbers
}

options parse_args(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--json") {
            o.json = true;
        } else if (a == "--table") {
            o.table = true;
        } else if (a == "--emit-profile") {
            o.emit_profile = true;
        } else if (a == "--profile-name") {
            if (i + 1 >= argc) usage_error("--profile-name needs a C++ identifier");
            o.profile_name = argv[++i];
            bool ok = !o.profile_name.empty() && !(o.profile_name[0] >= '0' && o.profile_name[0] <= '9');
            for (char c : o.profile_name)
                ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
            if (!ok) usage_error("--profile-name: '" + o.profile_name + "' is not a C++ identifier");
        } else if (a == "--assume-kernel") {
            if (i + 1 >= argc) usage_error("--assume-kernel needs a version, e.g. --assume-kernel 6.1");
            o.assume = argv[++i];
        } else if (a.starts_with("--assume-kernel=")) {
            o.assume = std::string(a.substr(std::string_view("--assume-kernel=").size()));
        } else if (a == "-h" || a == "--help") {
            usage(std::cout);
            std::exit(0);
        } else {
            usage_error("unknown option '" + std::string(a) + "'");
        }
    }
    return o;
}

// ---- --emit-profile ---------------------------------------------------------------------

// Only what ksvc knows is recorded: opcodes of its table and setup flags / features of its
// tables (a newer kernel's extra bits mean nothing to a build of this ksvc).
template <class Table>
std::string bit_names(const Table& table, std::uint32_t bits) {
    std::string s;
    for (const auto& f : table)
        if (bits & f.bit) s += (s.empty() ? "" : " | ") + std::string(f.name);
    return s.empty() ? "none" : s;
}

int emit_profile(const ksvc::capabilities& caps, const std::string& running, const std::string& name) {
    if (!caps.io_uring_available) {
        std::cerr << "ksvc-probe: cannot emit a profile: io_uring is unavailable here: " << caps.unavailable_reason << "\n";
        return 1;
    }
    ksvc::opcode_set ops;
    for (const auto& o : ksvc::opcode_table)
        if (caps.has(o.op)) ops = ops.with(static_cast<std::size_t>(o.op));
    std::uint32_t flags = 0, features = 0;
    for (const auto& f : ksvc::setup_flag::table)
        if (caps.has_setup_flag(f.bit)) flags |= f.bit;
    for (const auto& f : ksvc::ring_feature::table)
        if (caps.has_feature(f.bit)) features |= f.bit;
    char words[4][24];
    for (int i = 0; i < 4; ++i)
        std::snprintf(words[i], sizeof words[i], "0x%016llxull", static_cast<unsigned long long>(ops.words[i]));
    std::ostringstream o;
    o << "// A ksvc kernel profile, written by `ksvc-probe --emit-profile` on kernel " << running << ".\n"
      << "// Build for a target running this kernel with ksvc::embedded_instance<" << name << "> or\n"
      << "// ksvc::static_router<" << name << ">: the routes are computed at compile time and nothing\n"
      << "// is probed at start-up (the instance checks once that the kernel offers all of this).\n"
      << "#pragma once\n#include <cstdint>\n\n#include <ksvc/module/profiles/kernel_profile.hpp>\n\n"
      << "struct " << name << " {\n"
      << "    static constexpr ksvc::kernel_version version{" << caps.version.major << ", " << caps.version.minor << ", "
      << caps.version.patch << "};\n";
    int n = 0;
    for (const auto& op : ksvc::opcode_table) n += caps.has(op.op);
    o << "    // " << n << " opcodes (bit i = IORING_OP number i)\n"
      << "    static constexpr ksvc::opcode_set opcodes{{" << words[0] << ", " << words[1] << ", " << words[2] << ", "
      << words[3] << "}};\n";
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", flags);
    o << "    // " << bit_names(ksvc::setup_flag::table, flags) << "\n"
      << "    static constexpr std::uint32_t setup_flags = " << hex << ";\n";
    std::snprintf(hex, sizeof hex, "0x%x", features);
    o << "    // " << bit_names(ksvc::ring_feature::table, features) << "\n"
      << "    static constexpr std::uint32_t features = " << hex << ";\n"
      << "};\nstatic_assert(ksvc::kernel_profile<" << name << ">);\n";
    std::cout << o.str();
    return 0;
}

std::string running_kernel() {
    utsname u{};
    if (::uname(&u) != 0) return "unknown";
    return u.release;
}

std::string opcode_name(std::size_t i) {
    if (i < ksvc::opcode_count) return std::string(ksvc::opcode_table[i].name);
    return "OP_" + std::to_string(i); // newer than ksvc's table
}

std::vector<std::string> opcode_names(const ksvc::capabilities& c) {
    std::vector<std::string> v;
    if (!c.io_uring_available) return v;
    for (std::size_t i = 0; i < c.opcodes.size(); ++i)
        if (c.opcodes.test(i)) v.push_back(opcode_name(i));
    return v;
}

template <class Table>
std::vector<std::string> flag_names(const Table& table, std::uint32_t bits, bool available) {
    std::vector<std::string> v;
    if (!available) return v;
    std::uint32_t known = 0;
    for (const auto& f : table) {
        known |= f.bit;
        if (bits & f.bit) v.emplace_back(f.name);
    }
    for (unsigned b = 0; b < 32; ++b) // bits newer than ksvc's table
        if ((bits & (1u << b)) && !(known & (1u << b))) v.push_back("BIT_" + std::to_string(b));
    return v;
}

// Which backend each preset serves Tier 1 with on this snapshot (the router follows it):
// default_instance and server_instance fall back to epoll where io_uring is refused.
struct preset_backend {
    const char* preset;
    ksvc::routing::backend_offer offer;
};
std::vector<preset_backend> preset_backends(const ksvc::capabilities& caps) {
    return {{"default_instance", ksvc::default_instance::backend_type::offer_for(caps)},
            {"server_instance", ksvc::server_instance::backend_type::offer_for(caps)},
            {"epoll_instance", ksvc::epoll_instance::backend_type::offer_for(caps)}};
}

struct route_row {
    std::uint32_t nr;
    std::string_view name;
    ksvc::route_info route;
    std::vector<std::string> served_by; //!< per preset_backends(): its backend's name, or the tier
};

std::vector<route_row> route_rows(const ksvc::probe_router& r, const std::vector<preset_backend>& presets) {
    std::vector<route_row> rows;
    for (const auto& s : ksvc::syscalls::native::names) {
        route_row row{s.nr, s.name, r.route(s.nr), {}};
        for (const auto& p : presets) {
            const ksvc::route_info ri = ksvc::routing::resolve(s.nr, p.offer);
            row.served_by.emplace_back(ri.tier == ksvc::tier::io_uring ? std::string(p.offer.backend)
                                                                      : std::string(ksvc::to_string(ri.tier)));
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

// ---- JSON -------------------------------------------------------------------------------

std::string json_str(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += ch;
            }
        }
    }
    return out + "\"";
}

std::string json_list(const std::vector<std::string>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + json_str(v[i]);
    return out + "]";
}

void print_json(const ksvc::capabilities& caps, const std::string& kernel, const std::string& running,
                const ksvc::probe_router& router) {
    std::ostringstream o;
    const char* nl = "\n";
    o << "{" << nl;
    o << "  \"kernel\": " << json_str(kernel) << "," << nl;
    o << "  \"running_kernel\": " << json_str(running) << "," << nl;
    o << "  \"assumed\": " << (caps.assumed ? "true" : "false") << "," << nl;
    o << "  \"io_uring_available\": " << (caps.io_uring_available ? "true" : "false") << "," << nl;
    o << "  \"features\": {" << nl;
    o << "    \"version\": " << json_str(caps.version.to_string()) << "," << nl;
    o << "    \"reason\": " << (caps.io_uring_available ? std::string("null") : json_str(caps.unavailable_reason))
      << "," << nl;
    o << "    \"unavailable_errno\": " << caps.unavailable_errno << "," << nl;
    o << "    \"io_uring_disabled_sysctl\": " << caps.io_uring_disabled_sysctl << "," << nl;
    o << "    \"opcodes\": " << json_list(opcode_names(caps)) << "," << nl;
    o << "    \"setup_flags\": "
      << json_list(flag_names(ksvc::setup_flag::table, caps.setup_flags, caps.io_uring_available)) << "," << nl;
    o << "    \"ring_features\": "
      << json_list(flag_names(ksvc::ring_feature::table, caps.features, caps.io_uring_available)) << nl;
    o << "  }," << nl;
    const auto presets = preset_backends(caps);
    const auto rows = route_rows(router, presets);
    o << "  \"backends\": {";
    for (std::size_t i = 0; i < presets.size(); ++i)
        o << (i ? ", " : "") << json_str(presets[i].preset) << ": " << json_str(presets[i].offer.backend);
    o << "}," << nl;
    // Counted over native syscalls (router.count() also counts the numbering's holes as legacy).
    std::size_t counts[ksvc::tier_count] = {};
    for (const auto& r : rows) ++counts[static_cast<std::size_t>(r.route.tier)];
    o << "  \"route_counts\": {";
    for (std::size_t t = 0; t < ksvc::tier_count; ++t)
        o << (t ? ", " : "") << json_str(ksvc::to_string(static_cast<ksvc::tier>(t))) << ": " << counts[t];
    o << "}," << nl;
    o << "  \"routes\": [" << nl;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        o << "    {\"name\": " << json_str(r.name) << ", \"nr\": " << r.nr
          << ", \"tier\": " << json_str(ksvc::to_string(r.route.tier)) << ", \"opcode\": "
          << (r.route.op == ksvc::opcode::none ? std::string("null") : json_str(ksvc::to_string(r.route.op)))
          << ", \"served_by\": {";
        for (std::size_t p = 0; p < presets.size(); ++p)
            o << (p ? ", " : "") << json_str(presets[p].preset) << ": " << json_str(r.served_by[p]);
        o << "}}" << (i + 1 < rows.size() ? "," : "") << nl;
    }
    o << "  ]" << nl << "}" << nl;
    std::cout << o.str();
}

// ---- human-readable ---------------------------------------------------------------------

void print_wrapped(const std::vector<std::string>& items, std::size_t indent = 4, std::size_t width = 100) {
    if (items.empty()) {
        std::cout << std::string(indent, ' ') << "(none)\n";
        return;
    }
    std::string line(indent, ' ');
    for (std::size_t i = 0; i < items.size(); ++i) {
        std::string item = items[i] + (i + 1 < items.size() ? "," : "");
        if (line.size() > indent && line.size() + 1 + item.size() > width) {
            std::cout << line << "\n";
            line.assign(indent, ' ');
        }
        if (line.size() > indent) line += ' ';
        line += item;
    }
    std::cout << line << "\n";
}

const char* tier_blurb(ksvc::tier t) {
    switch (t) {
    case ksvc::tier::shared_page: return "answered in user space, never queued";
    case ksvc::tier::io_uring: return "translated into an SQE (syscall -> opcode)";
    case ksvc::tier::worker_pool: return "syscall(2) on a pool thread";
    case ksvc::tier::legacy: return "refused by the dispatcher: the caller runs it itself";
    }
    return "";
}

// What each shipped ring preset gets here: a real ring set up with this snapshot's features
// (after `auto` and the fallbacks), its registrations made on this thread.
template <class Backend>
void print_preset(const char* name, const ksvc::capabilities& caps) {
    std::cout << "    " << name << ": ";
    try {
        Backend b(caps);
        b.attach_to_this_thread();
        const auto& f = b.features();
        const auto flags = flag_names(ksvc::setup_flag::table, f.setup_flags, true);
        std::string line;
        for (const auto& fl : flags) line += (line.empty() ? "" : " ") + fl;
        std::cout << (line.empty() ? "(plain ring)" : line) << (f.registered_ring_fd ? " +registered ring fd" : "")
                  << (f.owner_thread ? " [owner thread]" : "")
                  << (f.fixed_files ? " +" + std::to_string(f.fixed_files) + " fixed-file slots" : std::string()) << "\n";
        std::string notes = f.notes;
        for (std::size_t at = 0; !notes.empty(); ) {
            const std::size_t nl = notes.find('\n', at);
            std::cout << "      fallback: " << notes.substr(at, nl == std::string::npos ? std::string::npos : nl - at) << "\n";
            if (nl == std::string::npos) break;
            at = nl + 1;
        }
    } catch (const std::exception& e) {
        std::cout << "cannot be set up: " << e.what() << "\n";
    }
}

void print_presets(const ksvc::capabilities& caps) {
    std::cout << "\n  ring presets on this kernel:\n";
    if (!caps.io_uring_available) {
        std::cout << "    (none: io_uring is unavailable)\n";
        return;
    }
    print_preset<ksvc::basic_io_uring>("basic_io_uring (default_instance)", caps);
    print_preset<ksvc::sqpoll_io_uring>("sqpoll_io_uring", caps);
    print_preset<ksvc::owner_thread_io_uring>("owner_thread_io_uring", caps);
    print_preset<ksvc::fixed_file_io_uring>("fixed_file_io_uring", caps);
    std::cout << "  operations:\n";
    const ksvc::probe_router r(caps);
    std::vector<std::string> items;
    for (const auto& o : ksvc::operation_table) {
        const auto ri = r.route(static_cast<std::uint32_t>(o.op));
        items.push_back(std::string(o.name) + "=" +
                        (ri.tier != ksvc::tier::io_uring ? "refused" : ri.emulated ? "emulated" : "native"));
    }
    print_wrapped(items);
}

void print_human(const ksvc::capabilities& caps, const std::string& kernel, const std::string& running,
                 const ksvc::probe_router& router, bool one_per_line) {
    std::cout << "ksvc-probe\n";
    if (caps.assumed)
        std::cout << "  kernel:              " << kernel << " (assumed; running " << running << ")\n";
    else
        std::cout << "  kernel:              " << kernel << "\n";
    std::cout << "  io_uring:            " << (caps.io_uring_available ? "available" : "NOT available");
    if (!caps.io_uring_available) std::cout << " — " << caps.unavailable_reason;
    std::cout << "\n";
    std::cout << "  sysctl kernel.io_uring_disabled: ";
    if (caps.io_uring_disabled_sysctl < 0) std::cout << "unknown (not readable here, or not part of the model)\n";
    else std::cout << caps.io_uring_disabled_sysctl << "\n";

    const auto ops = opcode_names(caps);
    std::cout << "\n  opcodes supported (" << ops.size() << "):\n";
    print_wrapped(ops);
    const auto sf = flag_names(ksvc::setup_flag::table, caps.setup_flags, caps.io_uring_available);
    std::cout << "  setup flags accepted (" << sf.size() << "):\n";
    print_wrapped(sf);
    const auto rf = flag_names(ksvc::ring_feature::table, caps.features, caps.io_uring_available);
    std::cout << "  ring features (IORING_FEAT_*, " << rf.size() << "):\n";
    print_wrapped(rf);
    // Real rings only for the live snapshot: an assumed kernel's model may claim flags this
    // kernel lacks.
    if (caps.assumed) std::cout << "\n  ring presets: shown for the running kernel only (no --assume-kernel)\n";
    else print_presets(caps);

    const auto presets = preset_backends(caps);
    const auto rows = route_rows(router, presets);
    std::cout << "\n  Tier 1 by preset (the router follows the backend; files go to the workers on epoll):\n";
    for (std::size_t p = 0; p < presets.size(); ++p) {
        std::size_t n = 0;
        for (const auto& r : rows) n += r.served_by[p] == presets[p].offer.backend;
        std::printf("    %-18s %-9s %3zu syscalls\n", presets[p].preset, presets[p].offer.backend, n);
    }
    std::cout << "\n  route table: " << rows.size() << " native syscalls (tier and opcode: default_instance)\n";
    if (one_per_line) {
        std::printf("  %4s  %-24s %-12s %-16s %-12s %-12s %s\n", "nr", "name", "tier", "opcode", "default", "server",
                    "epoll");
        for (const auto& r : rows)
            std::printf("  %4u  %-24.*s %-12s %-16s %-12s %-12s %s\n", r.nr, static_cast<int>(r.name.size()),
                        r.name.data(), std::string(ksvc::to_string(r.route.tier)).c_str(),
                        r.route.op == ksvc::opcode::none ? "-" : std::string(ksvc::to_string(r.route.op)).c_str(),
                        r.served_by[0].c_str(), r.served_by[1].c_str(), r.served_by[2].c_str());
        std::fflush(stdout);
        return;
    }
    for (std::size_t t = 0; t < ksvc::tier_count; ++t) {
        const auto tt = static_cast<ksvc::tier>(t);
        std::vector<std::string> items;
        for (const auto& r : rows) {
            if (r.route.tier != tt) continue;
            std::string item = std::string(r.name) + "(" + std::to_string(r.nr) + ")";
            if (r.route.op != ksvc::opcode::none) item += "->" + std::string(ksvc::to_string(r.route.op));
            items.push_back(std::move(item));
        }
        std::cout << "\n  Tier " << t << " " << ksvc::to_string(tt) << " (" << items.size()
                  << "): " << tier_blurb(tt) << "\n";
        print_wrapped(items);
    }
    std::cout << "\n  (--table prints one syscall per line; --json for machines)\n";
}

} // namespace

int main(int argc, char** argv) {
    const options opt = parse_args(argc, argv);
    const std::string running = running_kernel();
    try {
        ksvc::capabilities caps;
        std::string kernel = running;
        if (opt.assume) {
            const auto v = parse_strict(*opt.assume);
            if (!v)
                usage_error("--assume-kernel: expected a version X.Y or X.Y.Z (e.g. 6.1), got \"" + *opt.assume +
                            "\"");
            caps = ksvc::capabilities::for_kernel(*v);
            kernel = v->to_string();
        } else {
            caps = ksvc::current_capabilities(); // honours KSVC_ASSUME_KERNEL / KSVC_DISABLE_IO_URING
            if (caps.assumed) kernel = caps.version.to_string();
        }
        if (opt.emit_profile) return emit_profile(caps, kernel, opt.profile_name);
        // Routes as default_instance makes them here: io_uring's, or epoll's where io_uring is refused.
        const ksvc::probe_router router(ksvc::default_instance::backend_type::offer_for(caps));
        if (opt.json) print_json(caps, kernel, running, router);
        else print_human(caps, kernel, running, router, opt.table);
    } catch (const std::invalid_argument& e) { // e.g. a malformed KSVC_ASSUME_KERNEL
        std::cerr << "ksvc-probe: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "ksvc-probe: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
