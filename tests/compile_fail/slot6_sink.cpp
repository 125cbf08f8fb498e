// ksvc::instance slot 6: a sink whose push() returns void (a full sink would drop silently
// instead of pushing back) is not a completion_sink, and the instance says which slot is wrong.
// The twin (-DKSVC_TWIN) composes the archetype in that slot and must compile.
#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

struct dropping_sink : archetype_sink {
    void push(const ksvc::completion_entry& c) noexcept { (void)archetype_sink::push(c); }
};
static_assert(!ksvc::completion_sink<dropping_sink>);

#ifndef KSVC_TWIN
using sink = dropping_sink;
#else
using sink = archetype_sink;
#endif

using composed = ksvc::instance<archetype_router, archetype_backend, archetype_worker_pool, archetype_notifier,
                                archetype_buffer_provider, sink, archetype_shared_page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
