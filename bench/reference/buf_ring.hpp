#pragma once
//! A provided-buffer ring for liburing 2.3, which has io_uring_register_buf_ring but not
//! io_uring_setup_buf_ring: the ring memory is page-aligned heap memory registered with the
//! kernel (IORING_REGISTER_PBUF_RING). Shared by the optimized echo reference and the load
//! generator; no ksvc code.
#include <liburing.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../common/harness.hpp"

namespace bench {

class buf_ring {
public:
    buf_ring(io_uring& ring, std::uint16_t bgid, unsigned entries, unsigned buf_size)
        : ring_(&ring), bgid_(bgid), entries_(entries), size_(buf_size), mask_(io_uring_buf_ring_mask(entries)) {
        if (::posix_memalign(reinterpret_cast<void**>(&br_), 4096, entries * sizeof(io_uring_buf)) != 0)
            die("posix_memalign", ENOMEM);
        std::memset(br_, 0, entries * sizeof(io_uring_buf));
        io_uring_buf_ring_init(br_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
        reg.ring_entries = entries;
        reg.bgid = bgid;
        if (int r = io_uring_register_buf_ring(&ring, &reg, 0); r < 0) die("io_uring_register_buf_ring", -r);
        if (::posix_memalign(reinterpret_cast<void**>(&data_), 4096, std::size_t{entries} * buf_size) != 0)
            die("posix_memalign", ENOMEM);
        for (unsigned i = 0; i < entries; ++i)
            io_uring_buf_ring_add(br_, data_ + std::size_t{i} * buf_size, buf_size, static_cast<unsigned short>(i), mask_, static_cast<int>(i));
        io_uring_buf_ring_advance(br_, static_cast<int>(entries));
    }
    ~buf_ring() {
        io_uring_unregister_buf_ring(ring_, bgid_);
        std::free(br_);
        std::free(data_);
    }
    buf_ring(const buf_ring&) = delete;
    buf_ring& operator=(const buf_ring&) = delete;

    unsigned char* buffer(unsigned bid) noexcept { return data_ + std::size_t{bid} * size_; }
    //! Hands buffer `bid` back to the kernel (visible at the next publish()).
    void recycle(unsigned bid) noexcept {
        io_uring_buf_ring_add(br_, buffer(bid), size_, static_cast<unsigned short>(bid), mask_, pending_++);
    }
    void publish() noexcept {
        if (pending_) io_uring_buf_ring_advance(br_, pending_);
        pending_ = 0;
    }
    std::uint16_t group() const noexcept { return bgid_; }
    unsigned size() const noexcept { return size_; }

private:
    io_uring* ring_;
    std::uint16_t bgid_;
    unsigned entries_, size_;
    int mask_;
    int pending_ = 0;
    io_uring_buf_ring* br_ = nullptr;
    unsigned char* data_ = nullptr;
};

} // namespace bench
