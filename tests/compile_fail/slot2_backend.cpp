// ksvc::instance slot 2: a backend whose submit() may throw is not an io_backend (submit() is
// on the dispatcher's hot path), and the instance says which slot is wrong.
// The twin (-DKSVC_TWIN) composes the archetype in that slot and must compile.
#include <system_error>

#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

struct throwing_submit_backend : archetype_backend {
    ksvc::status submit(const ksvc::submit_entry& e, ksvc::route_info r) { return archetype_backend::submit(e, r); }
};
static_assert(!ksvc::io_backend<throwing_submit_backend>);

#ifndef KSVC_TWIN
using backend = throwing_submit_backend;
#else
using backend = archetype_backend;
#endif

using composed = ksvc::instance<archetype_router, backend, archetype_worker_pool, archetype_notifier,
                                archetype_buffer_provider, archetype_sink, archetype_shared_page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
