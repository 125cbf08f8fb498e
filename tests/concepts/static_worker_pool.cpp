// Compile-time conformance of worker_pool: the archetype, fixed_pool and inline_worker satisfy
// it; a probe type with exactly one flaw (a member missing, returning the wrong type, not
// noexcept, or an accessor that needs a non-const pool) does not. The flawless probe is the control.
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <span>
#include <system_error>

#include <ksvc/core/concepts/worker_pool.hpp>
#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/inline_worker.hpp>
#include <ksvc/module/workers/lazy_pool.hpp>

#include "concepts/flaws.hpp"
#include "support/archetypes/archetype_worker_pool.hpp"

namespace {
using namespace ksvc;

static_assert(worker_pool<test::archetype_worker_pool>);
static_assert(worker_pool<fixed_pool>);
static_assert(worker_pool<inline_worker>);
static_assert(worker_pool<lazy_pool>);

enum class flaw {
    none,
    enqueue_missing, enqueue_wrong_type, enqueue_throws,
    reap_missing, reap_wrong_type, reap_throws,
    attach_missing, attach_throws,
    shutdown_missing, shutdown_throws,
    outstanding_missing, outstanding_wrong_type, outstanding_throws, outstanding_not_const,
    active_workers_missing, active_workers_wrong_type, active_workers_throws,
    total_workers_missing, total_workers_wrong_type, total_workers_throws,
    max_workers_missing, max_workers_wrong_type, max_workers_throws,
    end
};

template <flaw F>
struct pool_probe {
    static constexpr bool ok(flaw missing, flaw wrong = flaw::end) { return F != missing && F != wrong; }

    std::error_code enqueue(const submit_entry&) noexcept(F != flaw::enqueue_throws)
        requires(ok(flaw::enqueue_missing, flaw::enqueue_wrong_type));
    bool enqueue(const submit_entry&) noexcept requires(F == flaw::enqueue_wrong_type); // a bool loses the reason

    std::size_t reap(std::span<completion_entry>) noexcept(F != flaw::reap_throws)
        requires(ok(flaw::reap_missing, flaw::reap_wrong_type));
    bool reap(std::span<completion_entry>) noexcept requires(F == flaw::reap_wrong_type);

    void attach(waker) noexcept(F != flaw::attach_throws) requires(ok(flaw::attach_missing));
    void shutdown() noexcept(F != flaw::shutdown_throws) requires(ok(flaw::shutdown_missing));

    std::size_t outstanding() const noexcept(F != flaw::outstanding_throws)
        requires(ok(flaw::outstanding_missing, flaw::outstanding_wrong_type) && F != flaw::outstanding_not_const);
    void outstanding() const noexcept requires(F == flaw::outstanding_wrong_type);
    std::size_t outstanding() noexcept requires(F == flaw::outstanding_not_const);

    std::size_t active_workers() const noexcept(F != flaw::active_workers_throws)
        requires(ok(flaw::active_workers_missing, flaw::active_workers_wrong_type));
    void active_workers() const noexcept requires(F == flaw::active_workers_wrong_type);

    std::size_t total_workers() const noexcept(F != flaw::total_workers_throws)
        requires(ok(flaw::total_workers_missing, flaw::total_workers_wrong_type));
    void total_workers() const noexcept requires(F == flaw::total_workers_wrong_type);

    std::size_t max_workers() const noexcept(F != flaw::max_workers_throws)
        requires(ok(flaw::max_workers_missing, flaw::max_workers_wrong_type));
    void max_workers() const noexcept requires(F == flaw::max_workers_wrong_type);
};

constexpr auto models = []<class T> { return worker_pool<T>; };
static_assert(test::every_flaw_breaks<flaw, pool_probe, decltype(models)>());

} // namespace

BOOST_AUTO_TEST_CASE(static_worker_pool_archetype_reports_one_worker) {
    test::archetype_worker_pool w(1);
    BOOST_TEST(w.total_workers() == 1u);
    BOOST_TEST(w.outstanding() == 0u);
}
