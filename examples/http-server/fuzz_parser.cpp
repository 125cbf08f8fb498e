// The request parser's fuzz target: libFuzzer (clang -fsanitize=fuzzer,address,undefined), or,
// built with KSVC_FUZZ_STANDALONE, a driver of its own that runs the seed corpus and a fixed
// number of deterministic mutations of it (for a compiler without libFuzzer).
//
// Beyond not crashing, every input must keep the parser's promises:
// - complete: `consumed` ends the first blank line after any leading empty lines and is within
//   the limit; the path is
//   relative, has no "." or ".." or empty segment and no NUL; every shorter prefix is incomplete;
// - refused: one of the statuses the parser documents.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http_parser.hpp"

namespace {
[[noreturn]] void broken(const char* what) {
    std::fprintf(stderr, "http parser broke a promise: %s\n", what);
    std::abort();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    http::limits lim;
    lim.header_bytes = 1024; // small limits: the fuzzer reaches them
    lim.header_count = 16;
    const http::parse_result r = http::parse(in, lim);
    switch (r.what) {
    case http::parse_result::incomplete:
        if (in.size() >= lim.header_bytes) broken("incomplete at the header limit");
        break;
    case http::parse_result::refused:
        switch (r.status) {
        case 400: case 403: case 405: case 413: case 414: case 431: case 501: case 505: break;
        default: broken("an undocumented status");
        }
        break;
    case http::parse_result::complete: {
        if (r.consumed > in.size() || r.consumed > lim.header_bytes) broken("consumed past the input or the limit");
        std::size_t lead = 0;
        while (in.substr(lead, 2) == "\r\n") lead += 2;
        lead = std::min(lead, r.consumed - 4); // "\r\n\r\n" alone: its own blank line
        if (in.substr(lead, r.consumed - lead).find("\r\n\r\n") != r.consumed - lead - 4)
            broken("consumed is not the first blank line after the leading empty lines");
        const std::string& p = r.req.path;
        if (!p.empty() && (p.front() == '/' || p.back() == '/')) broken("a path that is not relative");
        if (p.find('\0') != std::string::npos) broken("a NUL in the path");
        std::size_t at = 0;
        while (at <= p.size() && !p.empty()) {
            const std::size_t slash = std::min(p.find('/', at), p.size());
            const std::string_view seg = std::string_view(p).substr(at, slash - at);
            if (seg.empty() || seg == "." || seg == "..") broken("an empty, '.' or '..' segment");
            at = slash + 1;
        }
        for (std::size_t cut = 0; cut < r.consumed; cut += 1 + cut / 8)
            if (http::parse(in.substr(0, cut), lim).what != http::parse_result::incomplete)
                broken("a prefix of a complete request is not incomplete");
        break;
    }
    }
    return 0;
}

#ifdef KSVC_FUZZ_STANDALONE
// Without libFuzzer: each seed file, then `runs` mutations (byte flips, inserts, deletes,
// splices of two seeds), from a fixed seed so a failure repeats.
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

int main(int argc, char** argv) {
    std::vector<std::string> seeds;
    long runs = 100000;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.rfind("-runs=", 0) == 0) { runs = std::strtol(a.c_str() + 6, nullptr, 10); continue; }
        if (a[0] == '-') continue; // libFuzzer's other flags
        if (DIR* d = ::opendir(a.c_str())) {
            while (const dirent* e = ::readdir(d)) {
                if (e->d_name[0] == '.') continue;
                std::ifstream f(a + "/" + e->d_name, std::ios::binary);
                seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
            }
            ::closedir(d);
        }
    }
    if (seeds.empty()) seeds.emplace_back("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    for (const std::string& s : seeds) LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    std::mt19937_64 rng(20261205);
    static const char interesting[] = "\r\n :/%.?#\t\0\x7f" "GETHEADPOST" "Content-Length" "Transfer-Encoding";
    for (long i = 0; i < runs; ++i) {
        std::string s = seeds[rng() % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 8);
        for (int k = 0; k < edits; ++k) {
            const std::size_t at = s.empty() ? 0 : rng() % (s.size() + 1);
            switch (rng() % 5) {
            case 0: if (at < s.size()) s[at] = static_cast<char>(rng()); break;
            case 1: s.insert(at, 1, interesting[rng() % (sizeof interesting - 1)]); break;
            case 2: if (at < s.size()) s.erase(at, 1 + rng() % 4); break;
            case 3: { const std::string& o = seeds[rng() % seeds.size()]; s.insert(at, o.substr(rng() % (o.size() + 1))); break; }
            case 4: s.insert(at, std::string(rng() % 1200, 'a')); break;
            }
        }
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    }
    std::printf("fuzz_parser: %zu seeds, %ld mutations: every promise kept\n", seeds.size(), runs);
    return 0;
}
#endif
