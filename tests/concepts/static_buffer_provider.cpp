// Compile-time conformance of buffer_provider: the archetype and heap_buffers satisfy it; a probe
// with exactly one flaw — in the provider (a member missing, the wrong type, not noexcept) or in
// its lease (copyable, immovable, a member missing or throwing) — does not. The flawless probe is
// the control.
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <span>

#include <ksvc/core/concepts/buffer_provider.hpp>
#include <ksvc/module/buffers/heap_buffers.hpp>
#include <ksvc/module/buffers/provided_buffer_ring.hpp>
#include <ksvc/module/buffers/registered_buffers.hpp>

#include "concepts/flaws.hpp"
#include "support/archetypes/archetype_buffer_provider.hpp"

namespace {
using namespace ksvc;

static_assert(buffer_provider<test::archetype_buffer_provider>);
static_assert(buffer_provider<heap_buffers>);
static_assert(buffer_provider<registered_buffers>);
static_assert(buffer_provider<provided_buffer_ring>);

enum class flaw {
    none,
    lease_type_missing, acquire_missing, acquire_wrong_type, acquire_throws,
    is_registered_missing, is_registered_wrong_type, is_registered_throws, is_registered_not_const,
    pool_size_missing, pool_size_wrong_type, pool_size_throws,
    in_use_missing, in_use_wrong_type, in_use_throws,
    buffer_size_missing, buffer_size_wrong_type, buffer_size_throws,
    // the lease
    lease_copyable, lease_immovable,
    data_missing, data_wrong_type, data_throws,
    bool_missing, bool_throws,
    id_missing, id_wrong_type, id_throws,
    end
};

template <flaw F>
constexpr bool ok(flaw missing, flaw wrong = flaw::end) { return F != missing && F != wrong; }

template <flaw F>
struct lease_probe {
    lease_probe() noexcept;
    lease_probe(lease_probe&&) noexcept requires(F != flaw::lease_immovable);
    lease_probe& operator=(lease_probe&&) noexcept requires(F != flaw::lease_immovable);
    lease_probe(const lease_probe&) requires(F == flaw::lease_copyable);
    lease_probe& operator=(const lease_probe&) requires(F == flaw::lease_copyable);
    ~lease_probe();

    std::span<std::byte> data() noexcept(F != flaw::data_throws) requires(ok<F>(flaw::data_missing, flaw::data_wrong_type));
    std::byte* data() noexcept requires(F == flaw::data_wrong_type); // a pointer loses the size

    explicit operator bool() const noexcept(F != flaw::bool_throws) requires(ok<F>(flaw::bool_missing));

    std::size_t id() const noexcept(F != flaw::id_throws) requires(ok<F>(flaw::id_missing, flaw::id_wrong_type));
    void id() const noexcept requires(F == flaw::id_wrong_type);
};

template <flaw F>
struct provider_base {};
template <flaw F>
    requires(F != flaw::lease_type_missing)
struct provider_base<F> {
    using lease = lease_probe<F>;
};

template <flaw F>
struct provider_probe : provider_base<F> {
    lease_probe<F> acquire(std::size_t) noexcept(F != flaw::acquire_throws)
        requires(ok<F>(flaw::acquire_missing, flaw::acquire_wrong_type));
    std::span<std::byte> acquire(std::size_t) noexcept requires(F == flaw::acquire_wrong_type); // not the lease

    bool is_registered() const noexcept(F != flaw::is_registered_throws)
        requires(ok<F>(flaw::is_registered_missing, flaw::is_registered_wrong_type) && F != flaw::is_registered_not_const);
    int is_registered() const noexcept requires(F == flaw::is_registered_wrong_type);
    bool is_registered() noexcept requires(F == flaw::is_registered_not_const);

    std::size_t pool_size() const noexcept(F != flaw::pool_size_throws)
        requires(ok<F>(flaw::pool_size_missing, flaw::pool_size_wrong_type));
    void pool_size() const noexcept requires(F == flaw::pool_size_wrong_type);

    std::size_t in_use() const noexcept(F != flaw::in_use_throws) requires(ok<F>(flaw::in_use_missing, flaw::in_use_wrong_type));
    void in_use() const noexcept requires(F == flaw::in_use_wrong_type);

    std::size_t buffer_size() const noexcept(F != flaw::buffer_size_throws)
        requires(ok<F>(flaw::buffer_size_missing, flaw::buffer_size_wrong_type));
    void buffer_size() const noexcept requires(F == flaw::buffer_size_wrong_type);
};

constexpr auto models = []<class T> { return buffer_provider<T>; };
static_assert(test::every_flaw_breaks<flaw, provider_probe, decltype(models)>());

// The headline case: a copyable lease would return its buffer twice.
struct copyable_lease_provider : test::archetype_buffer_provider {
    struct lease {
        std::span<std::byte> data() noexcept;
        explicit operator bool() const noexcept;
        std::size_t id() const noexcept;
    };
    lease acquire(std::size_t) noexcept;
};
static_assert(std::copyable<copyable_lease_provider::lease>);
static_assert(!buffer_provider<copyable_lease_provider>);

} // namespace

BOOST_AUTO_TEST_CASE(static_buffer_provider_archetype_leases) {
    test::archetype_buffer_provider p(1, 64);
    auto l = p.acquire(64);
    BOOST_TEST(static_cast<bool>(l));
    BOOST_TEST(p.in_use() == 1u);
}
