#pragma once
//! The kernel capability snapshot: what this kernel's io_uring can do, computed once.
//! Core holds the vocabulary and the version-derived model; live detection (io_uring_setup,
//! IORING_REGISTER_PROBE, trial setups) lives in ksvc::module (ksvc/module/capabilities.hpp).
#include <bitset>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <ksvc/core/kernel_version.hpp>
#include <ksvc/core/opcodes.hpp>

namespace ksvc {

//! IORING_SETUP_* bits (kernel ABI), with the release that introduced each.
namespace setup_flag {
inline constexpr std::uint32_t iopoll = 1u << 0, sqpoll = 1u << 1, sq_aff = 1u << 2, cqsize = 1u << 3,
    clamp = 1u << 4, attach_wq = 1u << 5, r_disabled = 1u << 6, submit_all = 1u << 7,
    coop_taskrun = 1u << 8, taskrun_flag = 1u << 9, sqe128 = 1u << 10, cqe32 = 1u << 11,
    single_issuer = 1u << 12, defer_taskrun = 1u << 13, no_mmap = 1u << 14,
    registered_fd_only = 1u << 15, no_sqarray = 1u << 16;
struct info {
    std::uint32_t bit;
    const char* name;
    kernel_version since;
};
inline constexpr info table[] = {
    {iopoll, "IOPOLL", {5, 1}}, {sqpoll, "SQPOLL", {5, 1}}, {sq_aff, "SQ_AFF", {5, 1}},
    {cqsize, "CQSIZE", {5, 5}}, {clamp, "CLAMP", {5, 6}}, {attach_wq, "ATTACH_WQ", {5, 6}},
    {r_disabled, "R_DISABLED", {5, 10}}, {submit_all, "SUBMIT_ALL", {5, 18}},
    {coop_taskrun, "COOP_TASKRUN", {5, 19}}, {taskrun_flag, "TASKRUN_FLAG", {5, 19}},
    {sqe128, "SQE128", {5, 19}}, {cqe32, "CQE32", {5, 19}}, {single_issuer, "SINGLE_ISSUER", {6, 0}},
    {defer_taskrun, "DEFER_TASKRUN", {6, 1}}, {no_mmap, "NO_MMAP", {6, 5}},
    {registered_fd_only, "REGISTERED_FD_ONLY", {6, 5}}, {no_sqarray, "NO_SQARRAY", {6, 6}},
};
//! The IORING_SETUP_* bits kernel `v` accepts, from the table.
constexpr std::uint32_t available_in(kernel_version v) noexcept {
    std::uint32_t bits = 0;
    for (const auto& f : table)
        if (v >= f.since) bits |= f.bit;
    return bits;
}
} // namespace setup_flag

//! IORING_FEAT_* bits reported by io_uring_setup (kernel ABI).
namespace ring_feature {
inline constexpr std::uint32_t single_mmap = 1u << 0, nodrop = 1u << 1, submit_stable = 1u << 2,
    rw_cur_pos = 1u << 3, cur_personality = 1u << 4, fast_poll = 1u << 5, poll_32bits = 1u << 6,
    sqpoll_nonfixed = 1u << 7, ext_arg = 1u << 8, native_workers = 1u << 9, rsrc_tags = 1u << 10,
    cqe_skip = 1u << 11, linked_file = 1u << 12, reg_reg_ring = 1u << 13, recvsend_bundle = 1u << 14;
struct info {
    std::uint32_t bit;
    const char* name;
    kernel_version since;
};
inline constexpr info table[] = {
    {single_mmap, "SINGLE_MMAP", {5, 4}}, {nodrop, "NODROP", {5, 5}},
    {submit_stable, "SUBMIT_STABLE", {5, 5}}, {rw_cur_pos, "RW_CUR_POS", {5, 6}},
    {cur_personality, "CUR_PERSONALITY", {5, 6}}, {fast_poll, "FAST_POLL", {5, 7}},
    {poll_32bits, "POLL_32BITS", {5, 9}}, {sqpoll_nonfixed, "SQPOLL_NONFIXED", {5, 11}},
    {ext_arg, "EXT_ARG", {5, 11}}, {native_workers, "NATIVE_WORKERS", {5, 12}},
    {rsrc_tags, "RSRC_TAGS", {5, 13}}, {cqe_skip, "CQE_SKIP", {5, 17}},
    {linked_file, "LINKED_FILE", {5, 17}}, {reg_reg_ring, "REG_REG_RING", {6, 3}},
    {recvsend_bundle, "RECVSEND_BUNDLE", {6, 10}},
};
//! The IORING_FEAT_* bits kernel `v` reports, from the table.
constexpr std::uint32_t available_in(kernel_version v) noexcept {
    std::uint32_t bits = 0;
    for (const auto& f : table)
        if (v >= f.since) bits |= f.bit;
    return bits;
}
} // namespace ring_feature

//! An immutable description of the kernel's io_uring. Obtain the live one from
//! ksvc::current_capabilities(); build others with for_kernel() to inject into routers in tests.
struct capabilities {
    kernel_version version{};
    bool io_uring_available = false;
    int unavailable_errno = 0;        //!< why not: EPERM (sysctl/seccomp), ENOSYS, ENOMEM, …
    std::string unavailable_reason;   //!< human-readable, names the cause
    int io_uring_disabled_sysctl = -1; //!< kernel.io_uring_disabled (0,1,2), -1 if unreadable
    std::bitset<256> opcodes;         //!< supported opcodes (IORING_REGISTER_PROBE)
    std::uint32_t setup_flags = 0;    //!< IORING_SETUP_* that a trial setup accepted
    std::uint32_t features = 0;       //!< IORING_FEAT_* reported by io_uring_setup
    bool assumed = false;             //!< derived from a version, not probed

    [[nodiscard]] bool has(opcode op) const noexcept {
        return io_uring_available && op != opcode::none && opcodes.test(static_cast<std::size_t>(op));
    }
    [[nodiscard]] bool has_setup_flag(std::uint32_t f) const noexcept {
        return io_uring_available && (setup_flags & f) == f;
    }
    [[nodiscard]] bool has_feature(std::uint32_t f) const noexcept {
        return io_uring_available && (features & f) == f;
    }

    //! What a kernel of version `v` with io_uring enabled offers, from the tables above.
    static capabilities for_kernel(kernel_version v) {
        capabilities c;
        c.version = v;
        c.assumed = true;
        c.io_uring_available = v >= kernel_version{5, 1};
        if (!c.io_uring_available) {
            c.unavailable_errno = 38; // ENOSYS
            c.unavailable_reason = "kernel " + v.to_string() + " predates io_uring (5.1)";
            return c;
        }
        for (const auto& o : opcode_table)
            if (v >= o.since) c.opcodes.set(static_cast<std::size_t>(o.op));
        c.setup_flags = setup_flag::available_in(v);
        c.features = ring_feature::available_in(v);
        c.io_uring_disabled_sysctl = 0;
        return c;
    }

    //! Narrows a probed snapshot to what kernel `v` would offer (never widens it).
    [[nodiscard]] capabilities assume(kernel_version v) const {
        capabilities model = for_kernel(v);
        capabilities c = *this;
        c.version = v;
        c.assumed = true;
        c.opcodes &= model.opcodes;
        c.setup_flags &= model.setup_flags;
        c.features &= model.features;
        if (!model.io_uring_available) {
            c.io_uring_available = false;
            c.unavailable_errno = model.unavailable_errno;
            c.unavailable_reason = model.unavailable_reason;
        }
        return c;
    }

    //! Applies KSVC_ASSUME_KERNEL=X.Y and KSVC_DISABLE_IO_URING=1 from the environment.
    //! KSVC_DISABLE_IO_URING takes 1/true/yes/on or 0/false/no/off (any case; empty = unset).
    //! Throws std::invalid_argument naming the variable when its value does not parse.
    [[nodiscard]] capabilities with_environment() const;

    //! Marks io_uring unavailable with a reason (used by detection and overrides).
    void disable(int err, std::string why) {
        io_uring_available = false;
        unavailable_errno = err;
        unavailable_reason = std::move(why);
    }
};

} // namespace ksvc

#include <stdexcept>

inline ksvc::capabilities ksvc::capabilities::with_environment() const {
    capabilities c = *this;
    if (const char* s = std::getenv("KSVC_ASSUME_KERNEL"); s && *s) {
        auto v = kernel_version::parse(s);
        if (!v) throw std::invalid_argument(std::string("KSVC_ASSUME_KERNEL: expected X.Y, got \"") + s + '"');
        c = c.assume(*v);
    }
    if (const char* s = std::getenv("KSVC_DISABLE_IO_URING"); s && *s) {
        // Strict: "false" or a typo must not silently disable io_uring.
        std::string v(s);
        for (char& ch : v) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
        if (v == "1" || v == "true" || v == "yes" || v == "on") {
            c.disable(1 /* EPERM */, "disabled by KSVC_DISABLE_IO_URING");
        } else if (!(v == "0" || v == "false" || v == "no" || v == "off")) {
            throw std::invalid_argument(std::string("KSVC_DISABLE_IO_URING: expected 1/true/yes/on or 0/false/no/off, got \"") +
                                        s + '"');
        }
    }
    return c;
}
