#pragma once
//! heap_buffers — a fixed pool of equally sized heap buffers, not registered with the kernel.
//! Single-threaded (the dispatcher's or the owner's thread).
#include <cstddef>
#include <cstdint>
#include <new>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <ksvc/core/concepts/buffer_provider.hpp>

namespace ksvc {

class heap_buffers {
public:
    class lease {
    public:
        lease() noexcept = default;
        lease(lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), id_(o.id_) {}
        lease& operator=(lease&& o) noexcept {
            if (this != &o) {
                reset();
                pool_ = std::exchange(o.pool_, nullptr);
                id_ = o.id_;
            }
            return *this;
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease() { reset(); }

        [[nodiscard]] std::span<std::byte> data() const noexcept {
            return pool_ ? std::span<std::byte>(pool_->storage_.get() + id_ * pool_->size_, pool_->size_)
                         : std::span<std::byte>{};
        }
        [[nodiscard]] std::size_t id() const noexcept { return id_; }
        explicit operator bool() const noexcept { return pool_ != nullptr; }
        //! Returns the buffer now (only once the kernel can no longer write it).
        void reset() noexcept {
            if (pool_) std::exchange(pool_, nullptr)->free_.push_back(id_);
        }

    private:
        friend class heap_buffers;
        lease(heap_buffers* p, std::size_t id) noexcept : pool_(p), id_(id) {}
        heap_buffers* pool_ = nullptr;
        std::size_t id_ = 0;
    };

    explicit heap_buffers(std::size_t count = 64, std::size_t size = 64 * 1024) : count_(count), size_(size) {
        if (count == 0 || size == 0)
            throw std::invalid_argument("heap_buffers: count and size must be non-zero (got " + std::to_string(count) +
                                        " x " + std::to_string(size) + ")");
        if (size > SIZE_MAX / count)
            throw std::invalid_argument("heap_buffers: " + std::to_string(count) + " x " + std::to_string(size) +
                                        " bytes overflows");
        free_.reserve(count);
        for (std::size_t i = count; i-- > 0;) free_.push_back(i);
    }
    heap_buffers(const heap_buffers&) = delete;
    heap_buffers& operator=(const heap_buffers&) = delete;

    //! An empty lease when no buffer of `min` bytes is free — or, at the first lease, when the
    //! pool's memory cannot be allocated.
    lease acquire(std::size_t min) noexcept {
        if (min > size_ || free_.empty()) return {};
        // Allocated at the first lease, not at construction: a pool nobody leases from costs
        // neither pages nor the mmap of count x size bytes (7 us of every instance's start-up).
        // Not value-initialised: a leased buffer's bytes are the user's to write.
        if (!storage_ && !(storage_ = std::unique_ptr<std::byte[]>(new (std::nothrow) std::byte[count_ * size_])))
            return {};
        const std::size_t id = free_.back();
        free_.pop_back();
        return {this, id};
    }
    [[nodiscard]] bool is_registered() const noexcept { return false; }
    [[nodiscard]] std::size_t pool_size() const noexcept { return count_; }
    [[nodiscard]] std::size_t in_use() const noexcept { return count_ - free_.size(); }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return size_; }

private:
    std::size_t count_, size_;
    std::unique_ptr<std::byte[]> storage_;
    std::vector<std::size_t> free_;
};
static_assert(buffer_provider<heap_buffers>);

} // namespace ksvc
