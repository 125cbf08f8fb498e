// ksvc::instance slot 7: a shared page whose answer() needs a mutable page (it must be callable
// from any thread on a const page) is not a shared_page, and the instance says which slot is wrong.
// The twin (-DKSVC_TWIN) composes the archetype in that slot and must compile.
#include <cstdint>

#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

struct mutable_answer_page : archetype_shared_page {
    bool answer(const ksvc::submit_entry& e, std::int64_t& r) noexcept { return archetype_shared_page::answer(e, r); }
};
static_assert(!ksvc::shared_page<mutable_answer_page>);

#ifndef KSVC_TWIN
using page = mutable_answer_page;
#else
using page = archetype_shared_page;
#endif

using composed = ksvc::instance<archetype_router, archetype_backend, archetype_worker_pool, archetype_notifier,
                                archetype_buffer_provider, archetype_sink, page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
