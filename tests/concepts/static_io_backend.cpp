// Compile-time conformance of io_backend: the archetype and basic_io_uring satisfy it; a probe
// type with exactly one flaw (a member missing, returning the wrong type, not noexcept, or an
// accessor that needs a non-const backend) does not. The probe without a flaw is the control.
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/module/backends/io_uring_backend.hpp>

#include "concepts/flaws.hpp"
#include "support/archetypes/archetype_backend.hpp"

namespace {
using namespace ksvc;

static_assert(io_backend<test::archetype_backend>);
static_assert(io_backend<basic_io_uring>);

enum class flaw {
    none,
    submit_missing, submit_wrong_type, submit_throws,
    flush_missing, flush_wrong_type, flush_throws,
    reap_missing, reap_wrong_type, reap_throws,
    cancel_missing, cancel_wrong_type, cancel_throws,
    cancel_all_missing, cancel_all_wrong_type, cancel_all_throws,
    wait_missing, wait_wrong_type, wait_throws,
    inflight_missing, inflight_wrong_type, inflight_throws, inflight_not_const,
    capacity_missing, capacity_wrong_type, capacity_throws,
    supports_missing, supports_wrong_type, supports_throws,
    end
};

template <flaw F>
struct backend_probe {
    static constexpr bool ok(flaw missing, flaw wrong) { return F != missing && F != wrong; }

    status submit(const submit_entry&, route_info) noexcept(F != flaw::submit_throws)
        requires(ok(flaw::submit_missing, flaw::submit_wrong_type));
    bool submit(const submit_entry&, route_info) noexcept requires(F == flaw::submit_wrong_type);

    int flush() noexcept(F != flaw::flush_throws) requires(ok(flaw::flush_missing, flaw::flush_wrong_type));
    std::error_code flush() noexcept requires(F == flaw::flush_wrong_type); // same_as<int>

    std::size_t reap(std::span<completion_entry>) noexcept(F != flaw::reap_throws)
        requires(ok(flaw::reap_missing, flaw::reap_wrong_type));
    int reap(std::span<completion_entry>) noexcept requires(F == flaw::reap_wrong_type); // same_as<size_t>

    std::error_code cancel(std::uint64_t) noexcept(F != flaw::cancel_throws)
        requires(ok(flaw::cancel_missing, flaw::cancel_wrong_type));
    bool cancel(std::uint64_t) noexcept requires(F == flaw::cancel_wrong_type);

    std::size_t cancel_all() noexcept(F != flaw::cancel_all_throws)
        requires(ok(flaw::cancel_all_missing, flaw::cancel_all_wrong_type));
    void cancel_all() noexcept requires(F == flaw::cancel_all_wrong_type);

    int wait(int, int) noexcept(F != flaw::wait_throws) requires(ok(flaw::wait_missing, flaw::wait_wrong_type));
    bool wait(int, int) noexcept requires(F == flaw::wait_wrong_type); // same_as<int>

    std::size_t inflight() const noexcept(F != flaw::inflight_throws)
        requires(ok(flaw::inflight_missing, flaw::inflight_wrong_type) && F != flaw::inflight_not_const);
    void inflight() const noexcept requires(F == flaw::inflight_wrong_type);
    std::size_t inflight() noexcept requires(F == flaw::inflight_not_const);

    std::size_t capacity() const noexcept(F != flaw::capacity_throws)
        requires(ok(flaw::capacity_missing, flaw::capacity_wrong_type));
    void capacity() const noexcept requires(F == flaw::capacity_wrong_type);

    bool supports(opcode) const noexcept(F != flaw::supports_throws)
        requires(ok(flaw::supports_missing, flaw::supports_wrong_type));
    int supports(opcode) const noexcept requires(F == flaw::supports_wrong_type); // same_as<bool>
};

constexpr auto models = []<class T> { return io_backend<T>; };
static_assert(test::every_flaw_breaks<flaw, backend_probe, decltype(models)>());

// The headline case: a submit() that may throw cannot sit on the dispatcher's hot path.
struct throwing_submit_backend : test::archetype_backend {
    status submit(const submit_entry& e, route_info r) { return archetype_backend::submit(e, r); }
};
static_assert(!io_backend<throwing_submit_backend>);

} // namespace

BOOST_AUTO_TEST_CASE(static_io_backend_archetype_refuses_what_it_cannot_translate) {
    test::archetype_backend b(1);
    submit_entry e;
    e.nr = syscalls::x86_64::getpid;
    BOOST_TEST((b.submit(e, {}) == status::unsupported));
    BOOST_TEST(b.inflight() == 0u);
}
