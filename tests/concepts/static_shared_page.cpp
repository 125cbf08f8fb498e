// Compile-time conformance of shared_page: the archetype and process_shared_page satisfy it; a
// probe type with exactly one flaw (a member missing, returning the wrong type, not noexcept, or
// answer()/an accessor that needs a non-const page) does not. The flawless probe is the control.
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include <unistd.h>

#include <ksvc/core/concepts/shared_page.hpp>
#include <ksvc/module/shared_page/process_shared_page.hpp>

#include "concepts/flaws.hpp"
#include "support/archetypes/archetype_shared_page.hpp"

namespace {
using namespace ksvc;

static_assert(shared_page<test::archetype_shared_page>);
static_assert(shared_page<process_shared_page>);

enum class flaw {
    none,
    answer_missing, answer_wrong_type, answer_throws, answer_not_const,
    observe_missing, observe_throws,
    refresh_missing, refresh_throws,
    pid_missing, pid_wrong_type, pid_throws, pid_not_const,
    ppid_missing, ppid_throws, pgid_missing, pgid_throws, sid_missing, sid_throws,
    uid_missing, uid_throws, gid_missing, gid_throws, euid_missing, euid_throws, egid_missing, egid_throws,
    rlimit_nofile_missing, rlimit_nofile_wrong_type, rlimit_nofile_throws,
    answered_missing, answered_wrong_type, answered_throws,
    end
};

template <flaw F>
struct page_probe {
    static constexpr bool ok(flaw missing, flaw wrong = flaw::end) { return F != missing && F != wrong; }

    bool answer(const submit_entry&, std::int64_t&) const noexcept(F != flaw::answer_throws)
        requires(ok(flaw::answer_missing, flaw::answer_wrong_type) && F != flaw::answer_not_const);
    std::int64_t answer(const submit_entry&, std::int64_t&) const noexcept requires(F == flaw::answer_wrong_type);
    bool answer(const submit_entry&, std::int64_t&) noexcept requires(F == flaw::answer_not_const);

    void observe(std::uint32_t) noexcept(F != flaw::observe_throws) requires(ok(flaw::observe_missing));
    void refresh() noexcept(F != flaw::refresh_throws) requires(ok(flaw::refresh_missing));

    long pid() const noexcept(F != flaw::pid_throws)
        requires(ok(flaw::pid_missing, flaw::pid_wrong_type) && F != flaw::pid_not_const);
    std::string pid() const noexcept requires(F == flaw::pid_wrong_type);
    long pid() noexcept requires(F == flaw::pid_not_const);
    long ppid() const noexcept(F != flaw::ppid_throws) requires(ok(flaw::ppid_missing));
    long pgid() const noexcept(F != flaw::pgid_throws) requires(ok(flaw::pgid_missing));
    long sid() const noexcept(F != flaw::sid_throws) requires(ok(flaw::sid_missing));
    long uid() const noexcept(F != flaw::uid_throws) requires(ok(flaw::uid_missing));
    long gid() const noexcept(F != flaw::gid_throws) requires(ok(flaw::gid_missing));
    long euid() const noexcept(F != flaw::euid_throws) requires(ok(flaw::euid_missing));
    long egid() const noexcept(F != flaw::egid_throws) requires(ok(flaw::egid_missing));

    std::uint64_t rlimit_nofile() const noexcept(F != flaw::rlimit_nofile_throws)
        requires(ok(flaw::rlimit_nofile_missing, flaw::rlimit_nofile_wrong_type));
    void rlimit_nofile() const noexcept requires(F == flaw::rlimit_nofile_wrong_type);

    std::uint64_t answered() const noexcept(F != flaw::answered_throws)
        requires(ok(flaw::answered_missing, flaw::answered_wrong_type));
    void answered() const noexcept requires(F == flaw::answered_wrong_type);
};

constexpr auto models = []<class T> { return shared_page<T>; };
static_assert(test::every_flaw_breaks<flaw, page_probe, decltype(models)>());

} // namespace

BOOST_AUTO_TEST_CASE(static_shared_page_archetype_knows_its_pid) {
    const test::archetype_shared_page p;
    BOOST_TEST(p.pid() == static_cast<long>(::getpid()));
}
