// ksvc::instance slot 1: a router whose route() may throw is not a syscall_router (route() runs
// for every call, on any thread), and the instance says which slot is wrong.
// The twin (-DKSVC_TWIN) composes the archetype in that slot and must compile.
#include <cstdint>

#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

struct throwing_router : archetype_router {
    ksvc::route_info route(std::uint32_t nr) const { return archetype_router::route(nr); }
};
static_assert(!ksvc::syscall_router<throwing_router>);

#ifndef KSVC_TWIN
using router = throwing_router;
#else
using router = archetype_router;
#endif

using composed = ksvc::instance<router, archetype_backend, archetype_worker_pool, archetype_notifier,
                                archetype_buffer_provider, archetype_sink, archetype_shared_page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
