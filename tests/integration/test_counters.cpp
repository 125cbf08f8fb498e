// Live counters: the published block against known work (per tier, per syscall, failures, in
// flight), its file (mode 0600, unreadable by another user, removed with the instance), publishing
// off, and ksvc-top --json reading the same figures from outside — under each ring configuration.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/counters/publisher.hpp>
#include <ksvc/module/presets.hpp>

#include "support/env_guard.hpp"
#include "support/fixtures.hpp"

namespace ksvc::test::counters {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;

std::size_t files_in(const std::filesystem::path& d) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(d)) ++n;
    return n;
}

// Submits `n` copies of `e` and takes their completions.
template <class I>
void run_batch(I& inst, submit_entry e, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        e.corr_id = i;
        while (inst.submit(e) == errc::ring_full) {
            inst.run_once(false); // inline: drives the loop; threaded: does nothing (the loop thread drives)
            std::this_thread::yield();
        }
    }
    BOOST_REQUIRE_EQUAL(take(inst, n).size(), n);
}

BOOST_AUTO_TEST_SUITE(live_counters)

BOOST_DATA_TEST_CASE(count_known_work_exactly, bdata::make(run_configs()), cfg) {
    temp_dir dir;
    env_guard where("KSVC_COUNTERS_DIR", dir.path.c_str());
    instance_options o = options_for(cfg);
    o.publish_counters = true;
    o.name = "counted";
    default_instance inst(o);
    BOOST_REQUIRE_MESSAGE(inst.counters(), "not published: " << inst.counters_file().error());
    BOOST_TEST(files_in(dir.path) == 1u);

    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd rd(p[0]), wr(p[1]);
    const int bad = closed_fd();
    char byte = 'x';
    BOOST_REQUIRE(inst.router().route(nr::write).tier == tier::io_uring);
    BOOST_REQUIRE(inst.router().route(nr::fcntl).tier == tier::worker_pool);
    BOOST_REQUIRE(inst.router().route(nr::getpid).tier == tier::shared_page);
    run_batch(inst, sys::write(wr, &byte, 1), 20);      // Tier 1, succeed
    run_batch(inst, sys::read(bad, &byte, 1), 3);       // Tier 1, EBADF
    run_batch(inst, sys::fcntl(rd, F_GETFL), 4);        // Tier 2, succeed
    run_batch(inst, sys::fcntl(bad, F_GETFL), 2);       // Tier 2, EBADF
    for (int i = 0; i < 5; ++i) BOOST_TEST(inst.call(sys::getpid()).result == ::getpid()); // Tier 0, blocking facade
    if (cfg.mode == dispatch_mode::inline_mode) inst.run_once(false); // the gauges are refreshed once per turn

    counters_view view(inst.counters_file().path());
    const counter_totals t = read_totals(*view);
    const auto at = [&](std::uint32_t n) { return counter_index(n); };
    BOOST_TEST(t.calls[at(nr::write)] == 20u);
    BOOST_TEST(t.failures[at(nr::write)] == 0u);
    BOOST_TEST(t.calls[at(nr::read)] == 3u);
    BOOST_TEST(t.failures[at(nr::read)] == 3u);
    BOOST_TEST(t.calls[at(nr::fcntl)] == 6u);
    BOOST_TEST(t.failures[at(nr::fcntl)] == 2u);
    BOOST_TEST(t.calls[at(nr::getpid)] == 5u);
    const auto ti = [](tier x) { return static_cast<std::size_t>(x); };
    BOOST_TEST(t.tier_calls[ti(tier::io_uring)] == 23u);
    BOOST_TEST(t.tier_failures[ti(tier::io_uring)] == 3u);
    BOOST_TEST(t.tier_calls[ti(tier::worker_pool)] == 6u);
    BOOST_TEST(t.tier_failures[ti(tier::worker_pool)] == 2u);
    BOOST_TEST(t.tier_calls[ti(tier::shared_page)] == 5u);
    BOOST_TEST(t.tier_calls[ti(tier::legacy)] == 0u);
    for (std::size_t i = 0; i < tier_count; ++i) BOOST_TEST(t.tier_done[i] == t.tier_calls[i]); // nothing in flight
    BOOST_TEST(t.delivered == 29u); // the submitted ones: call() returns its own
    BOOST_TEST(view->workers_total.load() >= 1u);
    BOOST_TEST(view->workers_busy.load() == 0u);
    BOOST_TEST(view->loop_turns.load() > 0u);
    BOOST_TEST(std::string(view->name) == "counted");
    BOOST_TEST(std::string(view->backend) == "io_uring");
    BOOST_TEST(std::string(view->dispatch) == (cfg.mode == dispatch_mode::threaded ? "threaded" : "inline"));
    BOOST_TEST(view->setup_flags.load() == inst.backend().setup_flags());
    BOOST_TEST(view->sq_entries.load() == cfg.ring_entries);
    BOOST_TEST(view->pid == static_cast<std::int64_t>(::getpid()));
}

BOOST_DATA_TEST_CASE(a_blocked_read_is_in_flight_until_it_completes, bdata::make(run_configs()), cfg) {
    temp_dir dir;
    env_guard where("KSVC_COUNTERS_DIR", dir.path.c_str());
    instance_options o = options_for(cfg);
    o.publish_counters = true;
    default_instance inst(o);
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd rd(p[0]), wr(p[1]);
    char buf[4];
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(rd, buf, sizeof buf), 7)));
    completion_entry out[4];
    BOOST_TEST(inst.wait_completions(out, 50) == 0u); // placed, nothing to read yet
    const counter_totals before = read_totals(*inst.counters());
    const std::size_t r = counter_index(nr::read);
    BOOST_TEST(before.calls[r] - before.done[r] == 1u);
    BOOST_TEST(before.tier_calls[1] - before.tier_done[1] == 1u);
    BOOST_REQUIRE(::write(wr, "ok", 2) == 2);
    BOOST_REQUIRE_EQUAL(take(inst, 1).size(), 1u);
    const counter_totals after = read_totals(*inst.counters());
    BOOST_TEST(after.calls[r] == after.done[r]);
    BOOST_TEST(after.failures[r] == 0u);
}

BOOST_AUTO_TEST_CASE(the_file_is_private_and_goes_with_the_instance) {
    temp_dir dir;
    env_guard where("KSVC_COUNTERS_DIR", dir.path.c_str());
    std::string path;
    {
        instance_options o;
        o.publish_counters = true;
        default_instance inst(o);
        BOOST_REQUIRE(inst.counters());
        path = inst.counters_file().path();
        BOOST_TEST(path.starts_with(dir.path.string() + "/ksvc." + std::to_string(::getpid()) + "."));
        struct stat st{};
        BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
        BOOST_TEST((st.st_mode & 0777) == 0600u);
        BOOST_TEST(st.st_uid == ::geteuid());
        const auto found = list_published(::getpid());
        BOOST_REQUIRE_EQUAL(found.size(), 1u);
        BOOST_TEST(found[0].path == path);
        BOOST_TEST(found[0].alive);
        if (::geteuid() == 0) {
            // Root reads anything: another user must not. A child drops to nobody and tries.
            ::chmod(dir.path.c_str(), 0755);
            const pid_t child = ::fork();
            BOOST_REQUIRE(child >= 0);
            if (child == 0) {
                if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
                    ::_exit(3);
                const int fd = ::open(path.c_str(), O_RDONLY);
                ::_exit(fd < 0 && errno == EACCES ? 0 : 1);
            }
            int status = 0;
            ::waitpid(child, &status, 0);
            BOOST_TEST(WIFEXITED(status));
            BOOST_TEST(WEXITSTATUS(status) == 0, "another user could open the counters (or could not drop root): exit "
                                                     << WEXITSTATUS(status));
        }
    }
    BOOST_TEST(!std::filesystem::exists(path));
    BOOST_TEST(files_in(dir.path) == 0u);
}

BOOST_AUTO_TEST_CASE(publishing_off_publishes_nothing) {
    temp_dir dir;
    env_guard where("KSVC_COUNTERS_DIR", dir.path.c_str());
    {
        instance_options o;
        o.publish_counters = false;
        default_instance inst(o);
        BOOST_TEST(!inst.counters());
        BOOST_TEST(inst.call(sys::getpid()).result == ::getpid()); // uncounted work still runs
        BOOST_TEST(files_in(dir.path) == 0u);
    }
    {
        env_guard off("KSVC_COUNTERS", "0");
        default_instance inst; // unset option: the environment decides
        BOOST_TEST(!inst.counters());
        BOOST_TEST(files_in(dir.path) == 0u);
    }
    {
        env_guard on("KSVC_COUNTERS", nullptr);
        default_instance inst;
        BOOST_TEST(inst.counters() != nullptr);
        BOOST_TEST(files_in(dir.path) == 1u);
    }
}

BOOST_AUTO_TEST_CASE(a_directory_that_cannot_hold_it_leaves_the_instance_working) {
    env_guard where("KSVC_COUNTERS_DIR", "/nonexistent/ksvc-counters");
    instance_options o;
    o.publish_counters = true;
    default_instance inst(o);
    BOOST_TEST(!inst.counters());
    BOOST_TEST(inst.counters_file().error().find("/nonexistent/ksvc-counters") != std::string::npos);
    BOOST_TEST(inst.call(sys::getpid()).result == ::getpid());
}

#ifdef KSVC_TOP_PATH
BOOST_AUTO_TEST_CASE(ksvc_top_reads_the_same_figures_from_outside) {
    temp_dir dir;
    env_guard where("KSVC_COUNTERS_DIR", dir.path.c_str());
    instance_options o;
    o.publish_counters = true;
    o.name = "top-test";
    default_instance inst(o);
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd rd(p[0]), wr(p[1]);
    char byte = 'x';
    run_batch(inst, sys::write(wr, &byte, 1), 17);
    run_batch(inst, sys::fcntl(closed_fd(), F_GETFL), 2);
    const std::string cmd = std::string(KSVC_TOP_PATH) + " --json -d 0 " + std::to_string(::getpid());
    std::FILE* f = ::popen(cmd.c_str(), "r");
    BOOST_REQUIRE(f);
    std::string out;
    char buf[4096];
    while (const std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    const int status = ::pclose(f);
    BOOST_TEST(WEXITSTATUS(status) == 0);
    BOOST_TEST_MESSAGE(out);
    BOOST_TEST(out.find("\"name\": \"top-test\"") != std::string::npos);
    BOOST_TEST(out.find("\"name\": \"write\", \"calls\": 17, \"failures\": 0, \"in_flight\": 0") != std::string::npos);
    BOOST_TEST(out.find("\"name\": \"fcntl\", \"calls\": 2, \"failures\": 2, \"in_flight\": 0") != std::string::npos);
    BOOST_TEST(out.find("{\"tier\": \"io_uring\", \"calls\": 17, \"failures\": 0, \"in_flight\": 0") != std::string::npos);

    // A process with no instance: exit 1 and a message naming the pid.
    const std::string none = std::string(KSVC_TOP_PATH) + " --json -d 0 1 2>&1";
    f = ::popen(none.c_str(), "r");
    out.clear();
    while (const std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    BOOST_TEST(WEXITSTATUS(::pclose(f)) == 1);
    BOOST_TEST(out.find("no running ksvc instance of pid 1") != std::string::npos);
}
#endif

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::counters
