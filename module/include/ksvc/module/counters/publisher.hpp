#pragma once
//! Publishing an instance's live counters (ksvc/core/counters.hpp) where `ksvc-top` can read
//! them, and finding them again from another process.
//!
//! A published block lives in `$KSVC_COUNTERS_DIR/ksvc.<pid>.<serial>` (default /dev/shm),
//! created O_EXCL with mode 0600: only the process's own user (and root) can read it. The file
//! is removed when the instance is destroyed; a process that dies leaves it behind, and readers
//! skip blocks whose process is gone. Publishing is on unless `KSVC_COUNTERS=0` (or `off`) or
//! instance_options::publish_counters says otherwise; a block that cannot be created (no
//! /dev/shm, a full tmpfs) leaves the instance uncounted, with the reason in `error()`.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ksvc/core/counters.hpp>

namespace ksvc {

struct effective_features;

//! Whether instances publish by default: KSVC_COUNTERS unset, or anything but 0/off/no/false.
bool counters_enabled_by_environment() noexcept;
//! $KSVC_COUNTERS_DIR, else /dev/shm.
std::string counters_directory();

//! Owns one published block. Not copyable; movable only before the dispatcher has it.
class counters_publisher {
public:
    counters_publisher() = default; //!< off: block() is nullptr
    //! Creates and maps the file. Never throws: a failure leaves block() nullptr and says why.
    counters_publisher(const std::string& name, const char* backend, const char* dispatch) noexcept;
    ~counters_publisher();
    counters_publisher(const counters_publisher&) = delete;
    counters_publisher& operator=(const counters_publisher&) = delete;

    [[nodiscard]] counters_block* block() const noexcept { return block_; }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }
    //! Writes what the ring got (setup flags, features, sizes, the fallback notes).
    void set_features(const effective_features& f) noexcept;

private:
    counters_block* block_ = nullptr;
    std::string path_, error_;
    long pid_ = 0;
};

//! One published block found by list_published().
struct published_counters {
    std::string path;
    long pid = 0;
    std::uint64_t serial = 0;
    bool alive = false; //!< its process still exists
};
//! The blocks in counters_directory() (only those of `pid` when given), oldest serial first.
std::vector<published_counters> list_published(std::optional<long> pid = std::nullopt);

//! A published block mapped read-only. Throws std::system_error naming the file when it cannot
//! be opened or mapped, std::runtime_error when it is not a counters block of this version.
class counters_view {
public:
    explicit counters_view(const std::string& path);
    ~counters_view();
    counters_view(const counters_view&) = delete;
    counters_view& operator=(const counters_view&) = delete;
    counters_view(counters_view&& o) noexcept : block_(o.block_), size_(o.size_) { o.block_ = nullptr; }

    [[nodiscard]] const counters_block& operator*() const noexcept { return *block_; }
    [[nodiscard]] const counters_block* operator->() const noexcept { return block_; }

private:
    const counters_block* block_ = nullptr;
    std::size_t size_ = 0;
};

//! Sums of the two tallies (what a reader shows).
struct counter_totals {
    std::uint64_t tier_calls[tier_count]{}, tier_done[tier_count]{}, tier_failures[tier_count]{};
    std::uint64_t delivered = 0, enobufs = 0;
    std::uint64_t calls[counters_slots]{}, done[counters_slots]{}, failures[counters_slots]{};
};
counter_totals read_totals(const counters_block& b) noexcept;

} // namespace ksvc
