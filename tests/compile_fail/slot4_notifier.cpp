// ksvc::instance slot 4: a notifier without wait_for_ms() (no bounded wait) is not a notifier,
// and the instance says which slot is wrong.
// The twin (-DKSVC_TWIN) composes the archetype in that slot and must compile.
#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

class untimed_notifier {
public:
    void notify() noexcept { n_.notify(); }
    void wait() noexcept { n_.wait(); }
    bool try_wait() noexcept { return n_.try_wait(); }

private:
    archetype_notifier n_;
};
static_assert(!ksvc::notifier<untimed_notifier>);

#ifndef KSVC_TWIN
using note = untimed_notifier;
#else
using note = archetype_notifier;
#endif

using composed = ksvc::instance<archetype_router, archetype_backend, archetype_worker_pool, note,
                                archetype_buffer_provider, archetype_sink, archetype_shared_page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
