#pragma once
//! bounded_ring<T> — a bounded multi-producer multi-consumer queue with a sequence number per
//! slot (D. Vyukov's design). A slot is published by storing its sequence *after* the value is
//! written (release) and consumed only when the sequence says so (acquire): a reader can never
//! see a half-written entry — the publication race of the seed's ring cannot happen.
//! try_push/try_pop never block; a full ring is reported, never overwritten.
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <sys/mman.h>

#include <ksvc/core/entry.hpp>

namespace ksvc {

inline constexpr std::size_t cache_line = 64;

//! Anonymous memory that costs no page until it is written: the kernel zero-fills a page on
//! first touch, and for the types kept in it (entries, integers) all-zero bytes are the
//! value-initialised state. A 4 096-slot lane written up front was 64 page faults per lane at
//! every instance's construction.
class zero_pages {
public:
    explicit zero_pages(std::size_t bytes) : bytes_(bytes) {
        void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        data_ = static_cast<std::byte*>(p);
    }
    //! A part of someone else's zero pages (not unmapped here): several rings share one mapping.
    explicit zero_pages(std::byte* borrowed) noexcept : bytes_(0), data_(borrowed) {}
    ~zero_pages() {
        if (bytes_) ::munmap(data_, bytes_);
    }
    zero_pages(const zero_pages&) = delete;
    zero_pages& operator=(const zero_pages&) = delete;
    [[nodiscard]] std::byte* data() const noexcept { return data_; }

private:
    std::size_t bytes_; // 0: borrowed
    std::byte* data_;
};

// T in zero pages must be trivially copyable and destructible, and a T of all-zero bytes must
// equal T{} (the entry types' members all default to zero).
template <class T>
concept zero_page_value = std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T> &&
                          alignof(T) <= cache_line;

//! `n` value-initialised T in zero pages.
template <zero_page_value T>
class zero_page_array {
public:
    explicit zero_page_array(std::size_t n) : mem_(n * sizeof(T)) {}
    T& operator[](std::size_t i) noexcept { return reinterpret_cast<T*>(mem_.data())[i]; }
    const T& operator[](std::size_t i) const noexcept { return reinterpret_cast<const T*>(mem_.data())[i]; }

private:
    zero_pages mem_;
};

//! The cells of a bounded_ring in one mapping (one mmap per lane, not two): `n` sequence words,
//! then `n` value-initialised T from the next cache line.
template <zero_page_value T>
class zero_page_cells {
public:
    explicit zero_page_cells(std::size_t n) : values_at_(values_offset(n)), mem_(bytes_for(n)) {}
    //! In `memory`: bytes_for(n) zero bytes, cache-line aligned, that outlive the cells.
    zero_page_cells(std::size_t n, std::byte* memory) noexcept : values_at_(values_offset(n)), mem_(memory) {}
    //! The bytes `n` cells take, rounded to a cache line (cells placed back to back stay aligned).
    static constexpr std::size_t bytes_for(std::size_t n) noexcept {
        return (values_offset(n) + n * sizeof(T) + cache_line - 1) / cache_line * cache_line;
    }
    std::size_t& seq(std::size_t i) const noexcept { return reinterpret_cast<std::size_t*>(mem_.data())[i]; }
    T& operator[](std::size_t i) const noexcept { return reinterpret_cast<T*>(mem_.data() + values_at_)[i]; }

private:
    static constexpr std::size_t values_offset(std::size_t n) noexcept {
        return (n * sizeof(std::size_t) + cache_line - 1) / cache_line * cache_line;
    }
    std::size_t values_at_;
    zero_pages mem_;
};

template <class T>
class bounded_ring {
public:
    //! `capacity` is rounded up to a power of two (at least 2).
    explicit bounded_ring(std::size_t capacity) : mask_(rounded(capacity) - 1), values_(mask_ + 1) {}
    //! In `memory`: memory_for(capacity) zero bytes, cache-line aligned, that outlive the ring
    //! (rings of one owner share one mapping: one mmap at construction instead of one each).
    bounded_ring(std::size_t capacity, std::byte* memory) : mask_(rounded(capacity) - 1), values_(mask_ + 1, memory) {}
    static std::size_t memory_for(std::size_t capacity) { return zero_page_cells<T>::bytes_for(rounded(capacity)); }

    bool try_push(const T& v) noexcept {
        return try_emplace([&](T& slot) noexcept { slot = v; });
    }
    //! Like try_push, with `write(T&)` filling the slot in place (no staging copy).
    template <class Write>
    bool try_emplace(Write&& write) noexcept {
        std::size_t pos = tail_.load(std::memory_order_relaxed);
        for (;;) {
            const std::size_t i = pos & mask_;
            const std::size_t seq = load_seq(i);
            const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
            if (diff == 0) {
                if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    write(values_[i]);
                    store_seq(i, pos + 1);
                    return true;
                }
            } else if (diff < 0) {
                return false; // full
            } else {
                pos = tail_.load(std::memory_order_relaxed);
            }
        }
    }

    //! Pushes `n` values into consecutive cells or none (a linked chain must stay contiguous
    //! however many producers push at once). `write(i, T&)` fills cell i of the run.
    template <class Write>
    bool try_emplace_n(std::size_t n, Write&& write) noexcept {
        if (n == 0) return true;
        if (n > mask_ + 1) return false;
        std::size_t pos = tail_.load(std::memory_order_relaxed);
        for (;;) {
            bool free = true;
            for (std::size_t i = 0; i < n && free; ++i)
                free = load_seq((pos + i) & mask_) == pos + i;
            if (!free) {
                const std::size_t now = tail_.load(std::memory_order_relaxed);
                if (now == pos) return false; // full (not merely raced)
                pos = now;
                continue;
            }
            if (tail_.compare_exchange_weak(pos, pos + n, std::memory_order_relaxed)) {
                for (std::size_t i = 0; i < n; ++i) {
                    write(i, values_[(pos + i) & mask_]);
                    store_seq((pos + i) & mask_, pos + i + 1);
                }
                return true;
            }
        }
    }

    bool try_pop(T& out) noexcept {
        std::size_t pos = head_.load(std::memory_order_relaxed);
        for (;;) {
            const std::size_t i = pos & mask_;
            const std::size_t seq = load_seq(i);
            const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
            if (diff == 0) {
                if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    out = values_[i];
                    store_seq(i, pos + mask_ + 1);
                    return true;
                }
            } else if (diff < 0) {
                return false; // empty
            } else {
                pos = head_.load(std::memory_order_relaxed);
            }
        }
    }

    //! Single-producer form, valid only while no other thread pushes at the same time (the
    //! inline dispatcher, whose owner is the only producer). Same cell protocol, no CAS.
    template <class Write>
    bool try_emplace_exclusive(Write&& write) noexcept {
        const std::size_t pos = tail_.load(std::memory_order_relaxed);
        const std::size_t i = pos & mask_;
        if (load_seq(i) != pos) return false; // full
        write(values_[i]);
        store_seq(i, pos + 1);
        tail_.store(pos + 1, std::memory_order_relaxed);
        return true;
    }

    //! Single-consumer forms, valid only while no other thread pops (producers may push): the
    //! dispatcher reads the oldest entry in place and releases its cell once it is placed, so
    //! an entry that must wait simply stays at the front.
    [[nodiscard]] const T* front_exclusive() const noexcept {
        const std::size_t pos = head_.load(std::memory_order_relaxed);
        const std::size_t i = pos & mask_;
        return load_seq(i) == pos + 1 ? &values_[i] : nullptr;
    }
    //! The entry `i` places behind the front, if it is published yet (single consumer).
    [[nodiscard]] const T* peek_exclusive(std::size_t i) const noexcept {
        const std::size_t pos = head_.load(std::memory_order_relaxed) + i;
        return load_seq(pos & mask_) == pos + 1 ? &values_[pos & mask_] : nullptr;
    }
    void pop_front_exclusive() noexcept { // precondition: front_exclusive() != nullptr
        const std::size_t pos = head_.load(std::memory_order_relaxed);
        store_seq(pos & mask_, pos + mask_ + 1);
        head_.store(pos + 1, std::memory_order_relaxed);
    }

    //! Approximate (exact when quiescent).
    [[nodiscard]] std::size_t size() const noexcept {
        const std::size_t t = tail_.load(std::memory_order_acquire);
        const std::size_t h = head_.load(std::memory_order_acquire);
        return t >= h ? t - h : 0;
    }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }
    [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

private:
    static std::size_t rounded(std::size_t capacity) {
        if (capacity > (std::size_t{1} << 30))
            throw std::invalid_argument("bounded_ring: capacity " + std::to_string(capacity) + " exceeds 2^30");
        return std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity);
    }
    std::size_t load_seq(std::size_t i) const noexcept {
        return std::atomic_ref<std::size_t>(values_.seq(i)).load(std::memory_order_acquire) + i;
    }
    void store_seq(std::size_t i, std::size_t seq) noexcept {
        std::atomic_ref<std::size_t>(values_.seq(i)).store(seq - i, std::memory_order_release);
    }

    const std::size_t mask_;
    // Each cell's sequence is stored less its index: a fresh cell's sequence is its index, so
    // every cell starts as zero bytes and costs no page (or memset) until used. The sequences
    // sit apart from the values, eight to a cache line, so the check that leads every push and
    // pop rarely misses (a 64-byte entry beside its sequence made each cell two lines, and that
    // load missed on every entry).
    zero_page_cells<T> values_;
    alignas(cache_line) std::atomic<std::size_t> tail_{0};
    alignas(cache_line) std::atomic<std::size_t> head_{0};
};

using submit_ring = bounded_ring<submit_entry>;

} // namespace ksvc
