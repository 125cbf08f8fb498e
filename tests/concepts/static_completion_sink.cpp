// Compile-time conformance of completion_sink: the archetype and ring_completion_sink satisfy it;
// a probe type with exactly one flaw (a member missing, returning the wrong type, not noexcept,
// or an accessor that needs a non-const sink) does not. The flawless probe is the control.
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <span>

#include <ksvc/core/concepts/completion_sink.hpp>
#include <ksvc/module/sinks/ring_completion_sink.hpp>

#include "concepts/flaws.hpp"
#include "support/archetypes/archetype_sink.hpp"

namespace {
using namespace ksvc;

static_assert(completion_sink<test::archetype_sink>);
static_assert(completion_sink<ring_completion_sink>);

enum class flaw {
    none,
    push_missing, push_wrong_type, push_throws,
    flush_missing, flush_throws,
    pop_missing, pop_wrong_type, pop_throws,
    attach_missing, attach_throws,
    free_slots_missing, free_slots_wrong_type, free_slots_throws, free_slots_not_const,
    capacity_missing, capacity_wrong_type, capacity_throws,
    end
};

template <flaw F>
struct sink_probe {
    static constexpr bool ok(flaw missing, flaw wrong = flaw::end) { return F != missing && F != wrong; }

    bool push(const completion_entry&) noexcept(F != flaw::push_throws) requires(ok(flaw::push_missing, flaw::push_wrong_type));
    void push(const completion_entry&) noexcept requires(F == flaw::push_wrong_type); // a silent drop

    void flush_and_notify() noexcept(F != flaw::flush_throws) requires(ok(flaw::flush_missing));

    std::size_t pop(std::span<completion_entry>) noexcept(F != flaw::pop_throws)
        requires(ok(flaw::pop_missing, flaw::pop_wrong_type));
    bool pop(std::span<completion_entry>) noexcept requires(F == flaw::pop_wrong_type); // same_as<size_t>

    void attach(waker) noexcept(F != flaw::attach_throws) requires(ok(flaw::attach_missing));

    std::size_t free_slots() const noexcept(F != flaw::free_slots_throws)
        requires(ok(flaw::free_slots_missing, flaw::free_slots_wrong_type) && F != flaw::free_slots_not_const);
    void free_slots() const noexcept requires(F == flaw::free_slots_wrong_type);
    std::size_t free_slots() noexcept requires(F == flaw::free_slots_not_const);

    std::size_t capacity() const noexcept(F != flaw::capacity_throws)
        requires(ok(flaw::capacity_missing, flaw::capacity_wrong_type));
    void capacity() const noexcept requires(F == flaw::capacity_wrong_type);
};

constexpr auto models = []<class T> { return completion_sink<T>; };
static_assert(test::every_flaw_breaks<flaw, sink_probe, decltype(models)>());

} // namespace

BOOST_AUTO_TEST_CASE(static_completion_sink_archetype_capacity) {
    test::archetype_sink s(3);
    BOOST_TEST(s.capacity() == 3u);
    BOOST_TEST(s.free_slots() == 3u);
}
