// Compile-time conformance of notifier: the archetype, eventfd_notifier and futex_notifier satisfy it; a probe
// type with exactly one flaw (a member missing, returning the wrong type, or not noexcept) does
// not. The flawless probe is the control.
#include <boost/test/unit_test.hpp>

#include <cstddef>

#include <ksvc/core/concepts/notifier.hpp>
#include <ksvc/module/notifiers/eventfd_notifier.hpp>
#include <ksvc/module/notifiers/futex_notifier.hpp>

#include "concepts/flaws.hpp"
#include "support/archetypes/archetype_notifier.hpp"

namespace {
using namespace ksvc;

static_assert(notifier<test::archetype_notifier>);
static_assert(notifier<eventfd_notifier>);
static_assert(notifier<futex_notifier>);

enum class flaw {
    none,
    notify_missing, notify_throws,
    wait_missing, wait_throws,
    try_wait_missing, try_wait_wrong_type, try_wait_throws,
    wait_for_ms_missing, wait_for_ms_wrong_type, wait_for_ms_throws,
    end
};

template <flaw F>
struct notifier_probe {
    static constexpr bool ok(flaw missing, flaw wrong = flaw::end) { return F != missing && F != wrong; }

    void notify() noexcept(F != flaw::notify_throws) requires(ok(flaw::notify_missing));
    void wait() noexcept(F != flaw::wait_throws) requires(ok(flaw::wait_missing));

    bool try_wait() noexcept(F != flaw::try_wait_throws) requires(ok(flaw::try_wait_missing, flaw::try_wait_wrong_type));
    int try_wait() noexcept requires(F == flaw::try_wait_wrong_type); // same_as<bool>, not a count

    bool wait_for_ms(int) noexcept(F != flaw::wait_for_ms_throws)
        requires(ok(flaw::wait_for_ms_missing, flaw::wait_for_ms_wrong_type));
    void wait_for_ms(int) noexcept requires(F == flaw::wait_for_ms_wrong_type);
};

constexpr auto models = []<class T> { return notifier<T>; };
static_assert(test::every_flaw_breaks<flaw, notifier_probe, decltype(models)>());

// The headline case: notify() is called from completion paths that must never throw.
struct throwing_notify : test::archetype_notifier {
    void notify() { archetype_notifier::notify(); }
};
static_assert(!notifier<throwing_notify>);

} // namespace

BOOST_AUTO_TEST_CASE(static_notifier_archetype_round_trip) {
    test::archetype_notifier n;
    n.notify();
    BOOST_TEST(n.try_wait());
}
