#pragma once
//! embedded_instance<Profile> — for a target whose kernel is known at build time: the routes
//! are computed by the compiler (static_router<Profile>), the ring's features are fixed by the
//! profile (strict: a kernel that refuses one is a deployment error, not a fallback), and
//! nothing is probed at start-up — no capability snapshot, no trial rings. Instead one
//! IORING_REGISTER_PROBE checks that the running kernel offers every opcode and feature the
//! profile promises (inline: on the instance's own ring before it is enabled; threaded: on a
//! small ring of its own before the loop thread starts); a lesser kernel gets
//! std::system_error(errc::profile_mismatch) naming what it lacks (setup flags are checked by
//! the instance's own ring setup, which fails on a missing one).
//!
//! Workflow: on (a copy of) the target, `ksvc-probe --emit-profile --profile-name target_kernel
//! > target_kernel.hpp`; build with `ksvc::embedded_instance<target_kernel>`
//! (examples/embedded shows it; docs/how-to/embedded-known-kernel.md).
#include <type_traits>

#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/buffers/heap_buffers.hpp>
#include <ksvc/module/instance.hpp>
#include <ksvc/module/notifiers/futex_notifier.hpp>
#include <ksvc/module/profiles/kernel_profile.hpp>
#include <ksvc/module/routers/static_router.hpp>
#include <ksvc/module/workers/lazy_pool.hpp>

namespace ksvc {

namespace detail {
template <kernel_profile P>
constexpr bool profile_sets(std::uint32_t flags) noexcept {
    return (P::setup_flags & flags) == flags;
}
} // namespace detail

//! The ring a profile fixes: the owner-thread ring (SINGLE_ISSUER + DEFER_TASKRUN) where the
//! profile has both (6.1+), cooperative task running where it has that (5.19+), else the plain
//! ring; restricted to what ksvc uses from 5.10. Every feature is strict.
template <kernel_profile P>
using embedded_io_uring = std::conditional_t<
    detail::profile_sets<P>(setup_flag::single_issuer | setup_flag::defer_taskrun),
    io_uring_backend<single_issuer_t<feature_mode::on, fallback_policy::strict>,
                     defer_taskrun_t<feature_mode::on, fallback_policy::strict>,
                     restricted_t<feature_mode::on, fallback_policy::strict>>,
    std::conditional_t<detail::profile_sets<P>(setup_flag::coop_taskrun | setup_flag::taskrun_flag),
                       io_uring_backend<coop_taskrun_t<feature_mode::on, fallback_policy::strict>,
                                        taskrun_flag_t<feature_mode::on, fallback_policy::strict>,
                                        restricted_t<feature_mode::on, fallback_policy::strict>>,
                       std::conditional_t<(P::version >= kernel_version{5, 10}),
                                          io_uring_backend<restricted_t<feature_mode::on, fallback_policy::strict>>,
                                          basic_io_uring>>>;

//! Checks, with one IORING_REGISTER_PROBE, that the running kernel offers the profile's opcodes
//! and features; throws std::system_error naming what is missing (errc::profile_mismatch), or
//! errc::io_uring_unavailable naming why io_uring is refused. `ring_fd` < 0: on a 2-entry ring
//! of its own; else on that ring (not yet enabled, or driven by this thread), whose
//! IORING_FEAT_* are `ring_features`.
void verify_kernel_offers(kernel_version promised, const opcode_set& opcodes, std::uint32_t setup_flags,
                          std::uint32_t features, int ring_fd = -1, std::uint32_t ring_features = 0);

template <kernel_profile P>
using embedded_base = instance<static_router<P>, embedded_io_uring<P>, lazy_pool, futex_notifier, heap_buffers>;

template <kernel_profile P>
class embedded_instance : public embedded_base<P> {
public:
    //! Verifies the kernel, then builds the instance on the profile's capabilities (o.caps is
    //! ignored: the profile is the snapshot).
    explicit embedded_instance(instance_options o = {}) : embedded_base<P>(checked(o)) {
        // Inline: the ring is not enabled until the owner first drives it — probe it now, on
        // this (the owner's) thread, instead of setting up a ring only to check.
        if (this->loop().mode() == dispatch_mode::inline_mode)
            verify_kernel_offers(P::version, P::opcodes, P::setup_flags, P::features, this->backend().ring_fd(),
                                 this->features().ring_features);
    }

private:
    static instance_options checked(instance_options o) {
        // Threaded: checked before anything starts, on a ring of its own. Inline: the
        // environment now (no ring at all where io_uring is forbidden), the kernel in the body.
        if (!(o.mode && *o.mode == dispatch_mode::inline_mode))
            verify_kernel_offers(P::version, P::opcodes, P::setup_flags, P::features);
        else if (const capabilities env = profile_capabilities<P>().with_environment(); !env.io_uring_available)
            throw std::system_error(make_error_code(errc::io_uring_unavailable), "embedded_instance: " + env.unavailable_reason);
        static const capabilities caps = profile_capabilities<P>();
        o.caps = &caps;
        return o;
    }
};
static_assert(instance_composition<embedded_base<linux_6_18>>);
static_assert(instance_composition<embedded_base<linux_5_10>>);

} // namespace ksvc
