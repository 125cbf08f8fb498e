#pragma once
//! provided_buffer_ring — equally sized buffers in a registered provided-buffer ring
//! (IORING_REGISTER_PBUF_RING, 5.19): the kernel picks a buffer for each recv_select /
//! recv_multishot of the group, the completion names it (completion_flags::buffer, aux = id),
//! and take(completion) turns it into a lease. Dropping the lease gives the buffer back to the
//! ring. With incremental consumption (IOU_PBUF_RING_INC, 6.12; `incremental` asks for it and
//! the registration falls back without it) one buffer serves several completions: each lease
//! covers the bytes its completion received, and the buffer returns to the ring once the kernel
//! is done with it (a completion without completion_flags::buffer_more) and every lease of it
//! was dropped.
//!
//! Before 5.19 (no registered rings; a snapshot of such a kernel acts the same) the buffers are
//! handed to the kernel with IORING_OP_PROVIDE_BUFFERS instead (5.7, `legacy()`): the same
//! completions and leases; a dropped lease's buffer is queued and provided again by the ring's
//! driving thread before it places its next entries (runs of consecutive ids in one SQE).
//!
//! An empty ring is the kernel's ENOBUFS: a recv completes with -ENOBUFS (a multishot recv ends
//! with it); drop leases and submit again. acquire() hands out nothing: the kernel picks.
//!
//! Lifetime and threads: registered by the backend on the thread that drives the ring
//! (resource()), unregistered at its teardown; the memory lives as long as this object, which the
//! instance destroys after its backend. Leases must be dropped before the provider is destroyed.
//! take() and lease drops happen on one consumer thread at a time — or on any threads after
//! share_between_threads() (a threaded instance's recv_stream takes on the loop thread, in
//! completion order, and drops on its consumer's).
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <liburing.h>

#include <ksvc/core/concepts/buffer_provider.hpp>
#include <ksvc/core/entry.hpp>
#include <ksvc/module/backends/uring_engine.hpp>

namespace ksvc {

class provided_buffer_ring {
public:
    //! The bytes one completion received: one buffer, or for a bundle (entry_flags::bundle)
    //! several, the named one and those after it in ring order.
    class lease {
    public:
        //! The segments of a lease in order: one span per buffer.
        class segment_iterator {
        public:
            using value_type = std::span<std::byte>;
            using difference_type = std::ptrdiff_t;
            segment_iterator() noexcept = default;
            value_type operator*() const noexcept {
                return {pool_->buffer(id_) + off_, std::min<std::size_t>(left_, pool_->size_ - off_)};
            }
            segment_iterator& operator++() noexcept {
                left_ -= std::min<std::size_t>(left_, pool_->size_ - off_);
                id_ = pool_->state_[id_].next;
                off_ = 0;
                return *this;
            }
            segment_iterator operator++(int) noexcept {
                segment_iterator t = *this;
                ++*this;
                return t;
            }
            friend bool operator==(const segment_iterator& a, const segment_iterator& b) noexcept {
                return a.left_ == b.left_;
            }

        private:
            friend class lease;
            segment_iterator(const provided_buffer_ring* p, std::uint16_t id, std::uint32_t off, std::size_t left) noexcept
                : pool_(p), id_(id), off_(off), left_(left) {}
            const provided_buffer_ring* pool_ = nullptr;
            std::uint16_t id_ = 0;
            std::uint32_t off_ = 0;
            std::size_t left_ = 0;
        };
        struct segment_range {
            segment_iterator b, e;
            [[nodiscard]] segment_iterator begin() const noexcept { return b; }
            [[nodiscard]] segment_iterator end() const noexcept { return e; }
        };

        lease() noexcept = default;
        lease(lease&& o) noexcept
            : pool_(std::exchange(o.pool_, nullptr)), id_(o.id_), offset_(o.offset_), len_(o.len_) {}
        lease& operator=(lease&& o) noexcept {
            if (this != &o) {
                reset();
                pool_ = std::exchange(o.pool_, nullptr);
                id_ = o.id_;
                offset_ = o.offset_;
                len_ = o.len_;
            }
            return *this;
        }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease() { reset(); }

        //! The bytes in the first buffer: all of them unless segment_count() > 1 (a bundle).
        [[nodiscard]] std::span<std::byte> data() const noexcept {
            return pool_ ? std::span<std::byte>(pool_->buffer(id_) + offset_, std::min<std::size_t>(len_, pool_->size_ - offset_))
                         : std::span<std::byte>{};
        }
        //! Every byte received, over all segments.
        [[nodiscard]] std::size_t size() const noexcept { return pool_ ? len_ : 0; }
        //! Buffers the bytes span: 1, or more for a bundle.
        [[nodiscard]] std::size_t segment_count() const noexcept {
            if (!pool_) return 0;
            const std::size_t first = pool_->size_ - offset_;
            return len_ <= first ? 1 : 1 + (len_ - first + pool_->size_ - 1) / pool_->size_;
        }
        [[nodiscard]] segment_range segments() const noexcept {
            if (!pool_) return {};
            return {{pool_, id_, offset_, len_}, {pool_, id_, 0, 0}};
        }
        //! A msghdr over the segments, for a sendmsg of every byte (op::send(fd, lease) uses it
        //! for a bundle); it lives in the pool and stays valid while the lease does.
        [[nodiscard]] const msghdr* as_msghdr() const noexcept { return pool_ ? pool_->bundle_msghdr(*this) : nullptr; }
        //! The first buffer's id (the one the completion names).
        [[nodiscard]] std::size_t id() const noexcept { return id_; }
        explicit operator bool() const noexcept { return pool_ != nullptr; }
        //! Gives the buffers back (to the ring once the kernel is done with them too).
        void reset() noexcept {
            if (pool_) std::exchange(pool_, nullptr)->release(*this);
        }

    private:
        friend class provided_buffer_ring;
        lease(provided_buffer_ring* p, std::uint16_t id, std::uint32_t off, std::uint32_t len) noexcept
            : pool_(p), id_(id), offset_(off), len_(len) {}
        provided_buffer_ring* pool_ = nullptr;
        std::uint16_t id_ = 0;
        std::uint32_t offset_ = 0, len_ = 0;
    };

    //! `count` buffers (a power of two, at most 32768) of `size` bytes for buffer group `group`.
    explicit provided_buffer_ring(std::size_t count = 64, std::size_t size = 64 * 1024, std::uint16_t group = 0,
                                  bool incremental = true)
        : count_(count), size_(size), group_(group), want_incremental_(incremental) {
        if (count == 0 || count > 32768 || (count & (count - 1)) != 0)
            throw std::invalid_argument("provided_buffer_ring: count must be a power of two in [1, 32768] (got " +
                                        std::to_string(count) + ")");
        if (size == 0 || size > 0xffffffffu)
            throw std::invalid_argument("provided_buffer_ring: size must be in [1, 4 GiB) (got " + std::to_string(size) + ")");
        ring_bytes_ = round_to_page(count * sizeof(io_uring_buf));
        storage_bytes_ = round_to_page(count * size);
        void* r = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r == MAP_FAILED) throw std::system_error(errno, std::system_category(), "provided_buffer_ring: mmap (ring)");
        void* b = ::mmap(nullptr, storage_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED) {
            const int e = errno;
            ::munmap(r, ring_bytes_);
            throw std::system_error(e, std::system_category(), "provided_buffer_ring: mmap (buffers)");
        }
        ring_ = static_cast<io_uring_buf_ring*>(r);
        storage_ = static_cast<std::byte*>(b);
        state_.resize(count);
        shadow_.resize(count);
        pos_of_.resize(count);
        io_uring_buf_ring_init(ring_);
        for (std::size_t i = 0; i < count; ++i) post(static_cast<std::uint16_t>(i), static_cast<int>(i));
        io_uring_buf_ring_advance(ring_, static_cast<int>(count));
    }
    ~provided_buffer_ring() {
        ::munmap(ring_, ring_bytes_);
        ::munmap(storage_, storage_bytes_);
    }
    provided_buffer_ring(const provided_buffer_ring&) = delete;
    provided_buffer_ring& operator=(const provided_buffer_ring&) = delete;

    //! Nothing: the kernel picks the buffer (take() the completion instead).
    lease acquire(std::size_t) noexcept { return {}; }

    //! The lease of the buffer(s) completion `c` filled; empty when `c` names no buffer of this
    //! ring (no completion_flags::buffer, another group's id, or taken already).
    lease take(const completion_entry& c) noexcept {
        if (!(c.flags & completion_flags::buffer)) return {};
        const std::unique_lock<std::mutex> g = guard();
        const std::size_t id = c.aux & 0xffffu;
        if (id >= count_) return {};
        buffer_state& st = state_[id];
        const bool more = c.flags & completion_flags::buffer_more; // the kernel keeps filling the last one
        if (st.kernel_done) return {};                             // a completion taken twice
        const auto len = static_cast<std::uint32_t>(c.result > 0 ? c.result : 0);
        const std::uint32_t off = st.consumed;
        std::uint32_t left = len, at = off;
        std::uint16_t cur = static_cast<std::uint16_t>(id);
        if (len > size_ - off) { // a bundle: the buffers after it in ring order, all unused yet
            if (legacy() || (len - (size_ - off) + size_ - 1) / size_ + 1 > count_) return {};
            std::uint16_t next = cur;
            for (std::size_t rest = len - (size_ - off); rest > 0; rest -= std::min<std::size_t>(rest, size_)) {
                next = shadow_[(pos_of_[next] + 1) & (count_ - 1)];
                if (state_[next].kernel_done || state_[next].consumed) return {};
            }
        }
        for (;;) { // every buffer but the last was filled to its end
            buffer_state& b = state_[cur];
            const std::uint32_t seg = std::min<std::uint32_t>(left, static_cast<std::uint32_t>(size_) - at);
            left -= seg;
            ++b.leases;
            if (left == 0) {
                b.consumed = more ? at + seg : 0;
                b.kernel_done = !more;
                break;
            }
            b.consumed = 0;
            b.kernel_done = true;
            b.next = shadow_[(pos_of_[cur] + 1) & (count_ - 1)];
            cur = b.next;
            at = 0;
        }
        in_use_.store(in_use_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); // writers are serialized
        return {this, static_cast<std::uint16_t>(id), off, len};
    }

    //! The kernel has the buffers: a registered ring, or provided by SQE (legacy()).
    [[nodiscard]] bool is_registered() const noexcept { return registered_.load(std::memory_order_acquire); }
    //! Fed by PROVIDE_BUFFERS SQEs because the kernel predates registered rings (5.19).
    [[nodiscard]] bool legacy() const noexcept { return legacy_.load(std::memory_order_acquire); }
    //! The errno of a registration the kernel refused (0: none, or not tried yet). A recv naming
    //! the group then fails with ENOBUFS for good: recv_stream ends with errc::not_registered.
    [[nodiscard]] int registration_error() const noexcept { return registration_error_.load(std::memory_order_acquire); }
    //! Whether the kernel took incremental consumption (known once registered).
    [[nodiscard]] bool incremental() const noexcept { return incremental_.load(std::memory_order_acquire); }
    [[nodiscard]] std::size_t pool_size() const noexcept { return count_; }
    //! Leases outstanding.
    [[nodiscard]] std::size_t in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return size_; }
    [[nodiscard]] std::uint16_t group() const noexcept { return group_; }
    //! Buffers given back to the ring since construction (beyond the initial fill).
    [[nodiscard]] std::uint64_t recycled() const noexcept { return recycled_.load(std::memory_order_relaxed); }

    //! From now on take() and lease drops may run on different threads at once (one mutex
    //! around them). Taking stays order-sensitive: with incremental consumption a buffer's
    //! completions must be taken in the order they were posted. Cannot be undone.
    void share_between_threads() noexcept { shared_.store(true, std::memory_order_release); }

    //! What the backend registers on its driving thread.
    //! The same ring for a backend without io_uring (epoll_backend), which takes buffers from it
    //! in user space; leases recycle into it as they do for the kernel.
    user_buffer_ring user_ring() noexcept { return {ring_, static_cast<std::uint32_t>(count_), group_}; }
    ring_resource resource() noexcept { return {"provided_buffer_ring", this, &attach, &detach, &replenish}; }

private:
    struct buffer_state {
        std::uint32_t consumed = 0; // incremental: bytes the kernel filled so far
        std::uint32_t leases = 0;
        std::uint16_t next = 0;     // in a bundle lease: the buffer after this one
        bool kernel_done = false;   // handed out whole, or the last part of it
    };
    struct bundle_io { // a bundle lease's msghdr, keyed by its first buffer (unique while held)
        msghdr msg{};
        std::vector<iovec> iov;
    };

    static std::size_t round_to_page(std::size_t n) noexcept { return (n + 4095) & ~std::size_t{4095}; }
    std::byte* buffer(std::size_t id) const noexcept { return storage_ + id * size_; }
    void post(std::uint16_t id, int offset) noexcept {
        const unsigned mask = io_uring_buf_ring_mask(static_cast<unsigned>(count_));
        io_uring_buf_ring_add(ring_, buffer(id), static_cast<unsigned>(size_), id, mask, offset);
        // Where it went: a bundle takes the buffers after its first one in this order.
        const auto pos = static_cast<std::uint16_t>((ring_->tail + static_cast<unsigned>(offset)) & mask);
        shadow_[pos] = id;
        pos_of_[id] = pos;
    }
    std::unique_lock<std::mutex> guard() noexcept {
        if (shared_.load(std::memory_order_acquire)) return std::unique_lock<std::mutex>(shared_mu_);
        return {};
    }
    void release(const lease& l) noexcept {
        const std::unique_lock<std::mutex> g = guard();
        in_use_.store(in_use_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
        std::uint16_t id = l.id_;
        std::size_t left = l.len_, at = l.offset_;
        do { // read `next` before drop(): a recycled buffer's link is stale
            const std::uint16_t next = state_[id].next;
            left -= std::min<std::size_t>(left, size_ - at);
            drop(id);
            id = next;
            at = 0;
        } while (left > 0);
    }
    const msghdr* bundle_msghdr(const lease& l) noexcept {
        if (bundle_io_.empty()) bundle_io_.resize(count_); // first use: bundles are opt-in
        bundle_io& b = bundle_io_[l.id_];
        b.iov.clear(); // keeps its capacity: no allocation once warmed up
        for (std::span<std::byte> seg : l.segments()) b.iov.push_back({seg.data(), seg.size()});
        b.msg = {};
        b.msg.msg_iov = b.iov.data();
        b.msg.msg_iovlen = b.iov.size();
        return &b.msg;
    }
    void drop(std::uint16_t id) noexcept {
        buffer_state& st = state_[id];
        if (--st.leases == 0 && st.kernel_done) {
            st.kernel_done = false;
            recycled_.store(recycled_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            if (legacy_.load(std::memory_order_relaxed)) {
                std::lock_guard g(pending_mu_); // the driving thread provides it (replenish)
                pending_.push_back(id);         // reserved to count_: never allocates
                has_pending_.store(true, std::memory_order_release);
                return;
            }
            post(id, 0);
            io_uring_buf_ring_advance(ring_, 1);
        }
    }

    // Before 5.19: every buffer is provided by SQE, first all of them, then each one dropped.
    int attach_legacy(resource_context& ctx) noexcept {
        if (!ctx.provide_buffers) { // before 5.7: no provided buffers at all
            registration_error_.store(EOPNOTSUPP, std::memory_order_release);
            return -EOPNOTSUPP;
        }
        std::lock_guard g(pending_mu_);
        pending_.reserve(count_);
        for (std::size_t i = 0; i < count_; ++i) pending_.push_back(static_cast<std::uint16_t>(i));
        has_pending_.store(true, std::memory_order_release);
        legacy_.store(true, std::memory_order_release);
        registered_.store(true, std::memory_order_release);
        ctx.wants_replenish = true;
        return 0;
    }
    static unsigned replenish(void* self, io_uring& ring) noexcept {
        auto* p = static_cast<provided_buffer_ring*>(self);
        if (!p->has_pending_.load(std::memory_order_acquire)) return 0;
        std::lock_guard g(p->pending_mu_);
        auto& q = p->pending_;
        std::sort(q.begin(), q.end());
        unsigned queued = 0;
        std::size_t i = 0;
        while (i < q.size()) {
            std::size_t j = i + 1;
            while (j < q.size() && q[j] == q[j - 1] + 1) ++j;
            io_uring_sqe* sqe = io_uring_get_sqe(&ring);
            if (!sqe) break; // the SQ is full: the rest goes with the next batch
            io_uring_prep_provide_buffers(sqe, p->buffer(q[i]), static_cast<int>(p->size_), static_cast<int>(j - i),
                                          p->group_, q[i]);
            sqe->user_data = detail::resource_tag;
            ++queued;
            i = j;
        }
        q.erase(q.begin(), q.begin() + static_cast<std::ptrdiff_t>(i));
        p->has_pending_.store(!q.empty(), std::memory_order_release);
        return queued;
    }

    static int attach(void* self, io_uring& ring, resource_context& ctx) noexcept {
        auto* p = static_cast<provided_buffer_ring*>(self);
        // A snapshot of an older kernel gets what that kernel would give.
        if (ctx.kernel < kernel_version{5, 19}) return p->attach_legacy(ctx);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(p->ring_);
        reg.ring_entries = static_cast<std::uint32_t>(p->count_);
        reg.bgid = p->group_;
        constexpr std::uint16_t pbuf_ring_inc = 2; // IOU_PBUF_RING_INC (6.12), `flags` where 2.3 has `pad`
        reg.pad = p->want_incremental_ && ctx.kernel >= kernel_version{6, 12} ? pbuf_ring_inc : 0;
        int r = io_uring_register_buf_ring(&ring, &reg, 0);
        if (r == -EINVAL && reg.pad) { // before 6.12: the same ring, consumed whole
            reg.pad = 0;
            r = io_uring_register_buf_ring(&ring, &reg, 0);
        }
        if (r == -EINVAL) return p->attach_legacy(ctx); // a real kernel before 5.19
        if (r == 0) {
            p->incremental_.store(reg.pad != 0, std::memory_order_release);
            p->registered_.store(true, std::memory_order_release);
        } else {
            p->registration_error_.store(-r, std::memory_order_release);
        }
        return r;
    }
    static void detach(void* self, io_uring& ring) noexcept {
        auto* p = static_cast<provided_buffer_ring*>(self);
        // Provided (legacy) buffers go with the ring; nothing names them any more.
        if (!p->legacy()) io_uring_unregister_buf_ring(&ring, p->group_);
        p->registered_.store(false, std::memory_order_release);
    }

    std::size_t count_, size_;
    std::uint16_t group_;
    bool want_incremental_;
    std::size_t ring_bytes_ = 0, storage_bytes_ = 0;
    io_uring_buf_ring* ring_ = nullptr;
    std::byte* storage_ = nullptr;
    std::vector<buffer_state> state_;
    std::vector<std::uint16_t> shadow_; // ring position -> the buffer last posted there
    std::vector<std::uint16_t> pos_of_; // buffer -> its ring position
    std::vector<bundle_io> bundle_io_;
    std::atomic<std::size_t> in_use_{0};     // written under take/release's serialization
    std::atomic<std::uint64_t> recycled_{0};
    std::atomic<bool> shared_{false};
    std::mutex shared_mu_;                   // take() and drops, once shared_
    std::atomic<bool> registered_{false};
    std::atomic<bool> incremental_{false};
    std::atomic<int> registration_error_{0};
    std::atomic<bool> legacy_{false};
    std::mutex pending_mu_;                  // legacy: drops (consumer) vs. replenish (driver)
    std::vector<std::uint16_t> pending_;     // legacy: dropped buffers not yet provided again
    std::atomic<bool> has_pending_{false};
};
static_assert(buffer_provider<provided_buffer_ring>);

} // namespace ksvc
