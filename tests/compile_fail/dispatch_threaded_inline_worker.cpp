// ksvc::instance with threaded_dispatch and inline_worker, which runs Tier-2 syscalls on the
// loop thread itself: one blocking syscall would stall every caller and stop(). The type fixes
// the mode, so the instance refuses the pair at compile time.
// The twin (-DKSVC_TWIN) fixes inline dispatch instead and must compile.
#include <ksvc/module/instance.hpp>
#include <ksvc/module/workers/inline_worker.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

#ifndef KSVC_TWIN
using mode = ksvc::threaded_dispatch;
#else
using mode = ksvc::inline_dispatch;
#endif

using composed = ksvc::instance<archetype_router, archetype_backend, ksvc::inline_worker, archetype_notifier,
                                archetype_buffer_provider, archetype_sink, archetype_shared_page, mode>;
static_assert(sizeof(composed) > 0);
} // namespace cf
