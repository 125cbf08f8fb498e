// ksvc::instance slot 3: a worker pool whose enqueue() returns bool (losing ring_full vs
// shut_down) is not a worker_pool, and the instance says which slot is wrong.
// The twin (-DKSVC_TWIN) composes the archetype in that slot and must compile.
#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

struct bool_enqueue_pool : archetype_worker_pool {
    bool enqueue(const ksvc::submit_entry& e) noexcept { return !archetype_worker_pool::enqueue(e); }
};
static_assert(!ksvc::worker_pool<bool_enqueue_pool>);

#ifndef KSVC_TWIN
using pool = bool_enqueue_pool;
#else
using pool = archetype_worker_pool;
#endif

using composed = ksvc::instance<archetype_router, archetype_backend, pool, archetype_notifier,
                                archetype_buffer_provider, archetype_sink, archetype_shared_page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
