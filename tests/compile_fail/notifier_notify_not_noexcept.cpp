// A notifier whose notify() may throw is not a notifier: notify() runs on completion paths
// (worker threads, the dispatcher) that must never unwind. The instance names the slot, and
// the concept diagnostic names the requirement that failed.
// The twin (-DKSVC_TWIN) composes the archetype notifier and must compile.
#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

struct throwing_notify : archetype_notifier {
    void notify() { archetype_notifier::notify(); }
};
static_assert(!ksvc::notifier<throwing_notify>);

#ifndef KSVC_TWIN
using note = throwing_notify;
#else
using note = archetype_notifier;
#endif

using composed = ksvc::instance<archetype_router, archetype_backend, archetype_worker_pool, note,
                                archetype_buffer_provider, archetype_sink, archetype_shared_page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
