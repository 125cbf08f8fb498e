// ksvc::instance slot 5: a provider whose lease is copyable (two owners would return the same
// buffer twice) is not a buffer_provider, and the instance says which slot is wrong.
// The twin (-DKSVC_TWIN) composes the archetype in that slot and must compile.
#include <cstddef>
#include <span>

#include <ksvc/module/instance.hpp>

#include "support/archetypes/archetypes.hpp"

namespace cf {
using namespace ksvc::test;

struct copyable_lease_provider : archetype_buffer_provider {
    struct lease {
        std::span<std::byte> buf;
        std::size_t index = 0;
        std::span<std::byte> data() const noexcept { return buf; }
        explicit operator bool() const noexcept { return !buf.empty(); }
        std::size_t id() const noexcept { return index; }
    };
    lease acquire(std::size_t) noexcept { return {}; }
};
static_assert(!ksvc::buffer_provider<copyable_lease_provider>);

#ifndef KSVC_TWIN
using buffers = copyable_lease_provider;
#else
using buffers = archetype_buffer_provider;
#endif

using composed = ksvc::instance<archetype_router, archetype_backend, archetype_worker_pool, archetype_notifier,
                                buffers, archetype_sink, archetype_shared_page>;
static_assert(sizeof(composed) > 0);
} // namespace cf
