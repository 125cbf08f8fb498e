#pragma once
//! frame_stack — a LIFO arena for coroutine frames, used through task's allocator hook:
//!
//!   ksvc::task<bool> answer(std::allocator_arg_t, ksvc::frame_allocator, const request& q);
//!   co_await answer(std::allocator_arg, frames_.allocator(), q);
//!
//! The frames of nested co_awaits are made and destroyed in stack order, so one block serves a
//! whole chain of them (a request's handler, the helpers it awaits, theirs) with a pointer bump
//! each instead of a malloc and a free. A stack holds its block only while it has frames: when
//! the last one goes, the block returns to a small per-thread cache, where the next stack that
//! starts a chain on that thread finds it. So a connection idle between requests holds no
//! block, and a busy server takes no memory from the heap per request.
//!
//! Contract. One thread uses a stack at a time (no locking). The stack outlives every frame made
//! from it. Frames are aligned to `alignment` (64: a frame that holds a submit_entry across an
//! await needs it, and the promise's operator new is not told the frame's alignment); a frame
//! needing more is not supported. A frame that does not fit in what is left of the block comes
//! from the heap (counted: heap_frames()). Frames freed out of order (branches of when_all made
//! from one stack) are not an error: a frame's room is reclaimed once every frame above it is
//! gone — so branches that keep making frames side by side push the top up, and spill to the
//! heap once the block is full; give such branches a stack each.
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define KSVC_FRAME_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define KSVC_FRAME_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define KSVC_FRAME_POISON(p, n) ((void)(p), (void)(n))
#define KSVC_FRAME_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace ksvc {

namespace detail::coro {
//! The allocator task's allocator hook takes, over a source of frame memory
//! (`allocate(bytes)`, `deallocate(p, bytes)`): frame_stack, and a stream's frame_arena.
template <class Source, class T = std::byte>
struct frame_source_allocator {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = frame_source_allocator<Source, U>;
    };
    Source* source;
    explicit frame_source_allocator(Source* s) noexcept : source(s) {}
    template <class U>
    frame_source_allocator(const frame_source_allocator<Source, U>& o) noexcept : source(o.source) {}
    T* allocate(std::size_t n) { return static_cast<T*>(source->allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { source->deallocate(p, n * sizeof(T)); }
    friend bool operator==(const frame_source_allocator&, const frame_source_allocator&) = default;
};
} // namespace detail::coro

class frame_stack {
public:
    static constexpr std::size_t alignment = 64;

    explicit frame_stack(std::size_t bytes = 4096) noexcept : capacity_(round_up(bytes)) {}
    frame_stack(const frame_stack&) = delete;
    frame_stack& operator=(const frame_stack&) = delete;
    ~frame_stack() {
        assert(top_ == 0 && "ksvc::frame_stack destroyed while frames made from it are alive");
        if (block_) give_back(block_, capacity_);
    }

    [[nodiscard]] void* allocate(std::size_t n) {
        const std::size_t need = sizeof(header) + round_up(n);
        if (!block_ && need <= capacity_) block_ = take(capacity_);
        if (!block_ || capacity_ - top_ < need) {
            ++heap_frames_;
            return ::operator new(n, align);
        }
        std::byte* at_top = block_ + top_;
        KSVC_FRAME_UNPOISON(at_top, need);
        auto* h = new (at_top) header{last_, false};
        last_ = top_;
        top_ += need;
        return h + 1;
    }

    void deallocate(void* p, std::size_t n) noexcept {
        const auto a = reinterpret_cast<std::uintptr_t>(p), base = reinterpret_cast<std::uintptr_t>(block_);
        if (!block_ || a < base || a >= base + capacity_) {
            ::operator delete(p, n, align);
            return;
        }
        at(a - base - sizeof(header)).freed = true;
        KSVC_FRAME_POISON(p, round_up(n)); // its header stays readable until it is popped
        // Pop every freed frame from the top: the one just freed, and any freed out of order below it.
        const std::size_t old_top = top_;
        while (top_ > 0 && at(last_).freed) {
            top_ = last_;
            last_ = at(last_).below;
        }
        KSVC_FRAME_POISON(block_ + top_, old_top - top_);
        if (top_ == 0) { // the chain is over: the block goes where the next chain will look
            give_back(block_, capacity_);
            block_ = nullptr;
        }
    }

    //! Bytes of the block in use (frames and their headers), 0 when every frame is gone.
    [[nodiscard]] std::size_t in_use() const noexcept { return top_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    //! Frames that did not fit and came from the heap.
    [[nodiscard]] std::uint64_t heap_frames() const noexcept { return heap_frames_; }

    //! The allocator to pass after std::allocator_arg.
    template <class T = std::byte>
    using allocator_of = detail::coro::frame_source_allocator<frame_stack, T>;
    [[nodiscard]] allocator_of<> allocator() noexcept { return allocator_of<>(this); }

private:
    static constexpr std::align_val_t align{alignment};
    struct alignas(alignment) header {
        std::size_t below; // offset of the header under this one (meaningless for the first)
        bool freed;
    };
    static constexpr std::size_t round_up(std::size_t n) noexcept { return (n + alignment - 1) / alignment * alignment; }
    header& at(std::size_t off) noexcept { return *reinterpret_cast<header*>(block_ + off); }

    // Blocks of stacks that emptied, per thread, for the next stack of the same size. Bounded:
    // past `kept` blocks go back to the heap. A block given back after the thread's cache is
    // gone (a stack emptied during thread exit) is freed at once.
    struct block_cache {
        static constexpr std::size_t kept = 64;
        struct entry {
            std::byte* block;
            std::size_t size;
        };
        std::vector<entry> blocks;
        bool alive = true;
        ~block_cache() {
            alive = false;
            for (const entry& e : blocks) release(e.block, e.size);
        }
    };
    static block_cache& cache() noexcept {
        static thread_local block_cache c;
        return c;
    }
    static std::byte* take(std::size_t size) {
        block_cache& c = cache();
        for (std::size_t i = c.blocks.size(); i-- > 0;)
            if (c.blocks[i].size == size) {
                std::byte* b = c.blocks[i].block;
                c.blocks[i] = c.blocks.back();
                c.blocks.pop_back();
                return b;
            }
        auto* b = static_cast<std::byte*>(::operator new(size, align));
        KSVC_FRAME_POISON(b, size); // unpoisoned frame by frame
        return b;
    }
    static void give_back(std::byte* b, std::size_t size) noexcept {
        block_cache& c = cache();
        if (c.alive && c.blocks.size() < block_cache::kept) {
            try {
                c.blocks.push_back({b, size});
                return;
            } catch (...) { // no room to remember it: free it
            }
        }
        release(b, size);
    }
    static void release(std::byte* b, std::size_t size) noexcept {
        KSVC_FRAME_UNPOISON(b, size);
        ::operator delete(b, size, align);
    }

    std::byte* block_ = nullptr;
    std::size_t capacity_;
    std::size_t top_ = 0, last_ = 0;
    std::uint64_t heap_frames_ = 0;
};

//! The allocator type for coroutine parameters: (std::allocator_arg_t, ksvc::frame_allocator, ...).
using frame_allocator = frame_stack::allocator_of<std::byte>;

} // namespace ksvc

#undef KSVC_FRAME_POISON
#undef KSVC_FRAME_UNPOISON
