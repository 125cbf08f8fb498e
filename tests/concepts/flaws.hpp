#pragma once
// The negative half of the static suites. Each suite writes a probe template Probe<flaw>: with
// flaw::none it is a model (the control), and every other flaw up to flaw::end breaks exactly
// one requirement (a member missing, the wrong return type, not noexcept, …). `Models` is a
// captureless lambda []<class T> { return some_concept<T>; }, since a concept cannot be passed.
#include <cstddef>
#include <utility>

namespace ksvc::test {

template <auto F, template <decltype(F)> class Probe, class Models>
constexpr bool flaw_breaks_the_concept() {
    static_assert(!Models{}.template operator()<Probe<F>>(), "a probe with this flaw still models the concept");
    return true;
}

template <class Flaw, template <Flaw> class Probe, class Models, std::size_t... I>
constexpr bool every_flaw_breaks(std::index_sequence<I...>) {
    static_assert(Models{}.template operator()<Probe<Flaw::none>>(), "the flawless probe must model the concept");
    return (flaw_breaks_the_concept<static_cast<Flaw>(I + 1), Probe, Models>() && ...);
}

//! True when Probe<none> models the concept and Probe<f> does not, for every other flaw f.
template <class Flaw, template <Flaw> class Probe, class Models>
constexpr bool every_flaw_breaks() {
    static_assert(static_cast<std::size_t>(Flaw::none) == 0, "flaw::none comes first");
    return every_flaw_breaks<Flaw, Probe, Models>(std::make_index_sequence<static_cast<std::size_t>(Flaw::end) - 1>{});
}

} // namespace ksvc::test
