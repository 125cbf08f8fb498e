#pragma once
//! frame_stack — a LIFO arena for coroutine frames, used through task's allocator hook:
//!
//!   ksvc::task<bool> answer(std::allocator_arg_t, ksvc::frame_allocator, const request& q);
//!   co_await answer(std::allocator_arg, frames_.allocator(), q);
//!
//! The frames of nested co_awaits are made and destroyed in stack order, so one block serves a
//! whole chain of them (a request's handler, the helpers it awaits, theirs) with a pointer bump
//! each instead of a malloc and a free. The block is taken at the first frame, not at
//! construction: an idle connection's stack costs nothing.
//!
//! Contract. One thread uses a stack at a time (no locking). The stack outlives every frame made
//! from it. A frame that does not fit in what is left of the block comes from the heap (counted:
//! heap_frames()); so does one made while the block is taken up to its end. A frame freed out of
//! order (two frames from one stack alive at once, the older destroyed first) is not an error:
//! its room is reclaimed once every frame above it is gone.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace ksvc {

class frame_stack {
public:
    explicit frame_stack(std::size_t bytes = 4096) noexcept : capacity_(round_up(bytes)) {}
    frame_stack(const frame_stack&) = delete;
    frame_stack& operator=(const frame_stack&) = delete;

    [[nodiscard]] void* allocate(std::size_t n) {
        const std::size_t need = sizeof(header) + round_up(n);
        if (!block_ && capacity_ >= need) block_.reset(static_cast<std::byte*>(::operator new(capacity_, align)));
        if (!block_ || capacity_ - top_ < need) {
            ++heap_frames_;
            return ::operator new(n, align);
        }
        auto* h = new (block_.get() + top_) header{last_, false};
        last_ = top_;
        top_ += need;
        return h + 1;
    }

    void deallocate(void* p, std::size_t n) noexcept {
        auto* b = static_cast<std::byte*>(p);
        if (!block_ || b < block_.get() || b >= block_.get() + capacity_) {
            ::operator delete(p, n, align);
            return;
        }
        reinterpret_cast<header*>(b)[-1].freed = true;
        // Pop every freed frame from the top: the one just freed, and any freed out of order below it.
        while (top_ > 0 && at(last_).freed) {
            top_ = last_;
            last_ = at(last_).below;
        }
    }

    //! Bytes of the block in use (frames and their headers), 0 when every frame is gone.
    [[nodiscard]] std::size_t in_use() const noexcept { return top_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    //! Frames that did not fit and came from the heap.
    [[nodiscard]] std::uint64_t heap_frames() const noexcept { return heap_frames_; }

    //! The allocator to pass after std::allocator_arg.
    template <class T = std::byte>
    struct allocator_of {
        using value_type = T;
        frame_stack* stack;
        explicit allocator_of(frame_stack* s) noexcept : stack(s) {}
        template <class U>
        allocator_of(const allocator_of<U>& o) noexcept : stack(o.stack) {}
        T* allocate(std::size_t n) { return static_cast<T*>(stack->allocate(n * sizeof(T))); }
        void deallocate(T* p, std::size_t n) noexcept { stack->deallocate(p, n * sizeof(T)); }
        friend bool operator==(const allocator_of&, const allocator_of&) = default;
    };
    [[nodiscard]] allocator_of<> allocator() noexcept { return allocator_of<>(this); }

private:
    // Frames are aligned to a cache line: a frame that holds a submit_entry across an await
    // (alignas(64)) needs it, and the promise's operator new is not told the frame's alignment.
    static constexpr std::size_t granule = 64;
    static constexpr std::align_val_t align{granule};
    struct alignas(granule) header {
        std::size_t below; // offset of the header under this one (meaningless for the first)
        bool freed;
    };
    struct block_delete {
        void operator()(std::byte* p) const noexcept { ::operator delete(p, align); }
    };
    static constexpr std::size_t round_up(std::size_t n) noexcept { return (n + granule - 1) / granule * granule; }
    header& at(std::size_t off) noexcept { return *reinterpret_cast<header*>(block_.get() + off); }

    std::unique_ptr<std::byte[], block_delete> block_;
    std::size_t capacity_;
    std::size_t top_ = 0, last_ = 0;
    std::uint64_t heap_frames_ = 0;
};

//! The allocator type for coroutine parameters: (std::allocator_arg_t, ksvc::frame_allocator, ...).
using frame_allocator = frame_stack::allocator_of<std::byte>;

} // namespace ksvc
