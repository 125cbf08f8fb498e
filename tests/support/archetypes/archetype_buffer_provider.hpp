#pragma once
//! archetype_buffer_provider — the minimal buffer_provider: `count` buffers of `size` bytes in one
//! allocation, a "used" flag each, and a move-only lease that clears its flag when destroyed.
//! Single-threaded. Leases must not outlive the provider.
#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include <ksvc/core/concepts/buffer_provider.hpp>

namespace ksvc::test {

class archetype_buffer_provider {
public:
    class lease {
    public:
        lease() noexcept = default;
        lease(lease&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)), id_(o.id_) {}
        lease& operator=(lease&& o) noexcept {
            lease tmp(std::move(o));
            std::swap(owner_, tmp.owner_);
            std::swap(id_, tmp.id_);
            return *this; // tmp returns what this held
        }
        ~lease() {
            if (owner_) owner_->used_[id_] = false;
        }

        [[nodiscard]] std::span<std::byte> data() const noexcept {
            if (!owner_) return {};
            return {owner_->storage_.get() + id_ * owner_->size_, owner_->size_};
        }
        explicit operator bool() const noexcept { return owner_ != nullptr; }
        [[nodiscard]] std::size_t id() const noexcept { return id_; }

    private:
        friend class archetype_buffer_provider;
        lease(archetype_buffer_provider* owner, std::size_t id) noexcept : owner_(owner), id_(id) {}
        archetype_buffer_provider* owner_ = nullptr;
        std::size_t id_ = 0;
    };

    explicit archetype_buffer_provider(std::size_t count = 4, std::size_t size = 4096)
        : size_(size), storage_(std::make_unique<std::byte[]>(count * size)), used_(count, false) {}
    archetype_buffer_provider(const archetype_buffer_provider&) = delete;
    archetype_buffer_provider& operator=(const archetype_buffer_provider&) = delete;

    lease acquire(std::size_t min) noexcept {
        if (min > size_) return {};
        for (std::size_t i = 0; i < used_.size(); ++i)
            if (!used_[i]) {
                used_[i] = true;
                return {this, i};
            }
        return {};
    }
    [[nodiscard]] bool is_registered() const noexcept { return false; }
    [[nodiscard]] std::size_t pool_size() const noexcept { return used_.size(); }
    [[nodiscard]] std::size_t in_use() const noexcept {
        std::size_t n = 0;
        for (bool u : used_) n += u;
        return n;
    }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return size_; }

private:
    std::size_t size_;
    std::unique_ptr<std::byte[]> storage_;
    std::vector<bool> used_;
};
static_assert(buffer_provider<archetype_buffer_provider>);

} // namespace ksvc::test
