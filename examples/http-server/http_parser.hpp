#pragma once
// The request side of HTTP/1.1 for a static file server (RFC 9110 / 9112): the request line and
// headers of one request at the front of a buffer, judged with the strictness a server facing
// the Internet needs. It allocates only the decoded path, never reads past `buf`, and has a
// fuzz target (fuzz_parser.cpp).
//
// What it refuses, and with which status:
// What it accepts besides origin-form: an absolute-form target ("http://host/path", which RFC
// 9112 §3.2.2 says a server MUST accept; the authority names no file and is dropped), and empty
// lines before the request line (§2.2: ignored).
//
//   400  a malformed request line or header line, a line ending in a bare LF (a recipient that
//        does not take LF alone as a line end must refuse it: it never becomes a 408 wait), a
//        target that is neither a path ("/…") nor an http(s) URI, userinfo in one, bad
//        percent-encoding or an encoded NUL or '/', obs-fold, whitespace before a colon, no or
//        several Host headers in HTTP/1.1, a Content-Length that is not a number or appears
//        twice with different values, Content-Length together with Transfer-Encoding
//        (request smuggling)
//   403  a path with a ".." segment (never resolved: nothing outside the root is ever named)
//   405  a method HTTP defines that this server does not serve (POST, PUT, …): Allow: GET, HEAD
//   413  a request with a body (Content-Length > 0, or any Transfer-Encoding)
//   414  a request line longer than the header limit
//   431  headers longer than the limit, or too many of them
//   501  a method nobody defines
//   505  an HTTP version other than 1.0 and 1.1
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace http {

struct limits {
    std::size_t header_bytes = 8192; //!< request line + headers + the blank line
    std::size_t header_count = 100;
};

enum class method { get, head };

struct request {
    method verb = method::get;
    int minor = 1;                      //!< HTTP/1.minor
    std::string path;                   //!< decoded, normalised, relative to the root ("" = the root)
    bool trailing_slash = false;        //!< the target named a directory ("/dir/")
    bool keep_alive = true;             //!< after this response the connection stays open
    std::string_view if_modified_since; //!< raw value (a view into the parsed buffer), empty if none
    std::string query;                  //!< after '?', raw (validated: no space or control), empty if none
};

struct parse_result {
    enum kind { incomplete, complete, refused } what = incomplete;
    int status = 0;            //!< refused: the status to answer with
    std::size_t consumed = 0;  //!< complete: bytes of this request (request line to blank line)
    bool head = false;         //!< the request line named HEAD: a refusal is answered without a body
    request req;
};

namespace detail {
inline bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
    }
}
inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}
inline std::string_view trim_ows(std::string_view v) noexcept {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}
inline int hex(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
// Whether `list` (a comma-separated header value) holds `token`, case-insensitively.
inline bool has_token(std::string_view list, std::string_view token) noexcept {
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}
inline parse_result refuse(int status, bool head = false) noexcept {
    parse_result r;
    r.what = parse_result::refused;
    r.status = status;
    r.head = head;
    return r;
}
// The path of an origin-form target: percent-decoded, "." and empty segments dropped.
// Returns 0 or the status to refuse with.
inline int decode_path(std::string_view target, request& out) {
    const std::size_t q = target.find('?');
    std::string_view p = target.substr(0, q);
    out.query = q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1));
    if (p.find('#') != std::string_view::npos) return 400;
    out.trailing_slash = p.size() > 1 && p.back() == '/';
    std::string segment;
    out.path.clear();
    auto flush = [&]() -> int {
        if (segment.empty() || segment == ".") {
            segment.clear();
            return 0;
        }
        if (segment == "..") return 403;
        if (!out.path.empty()) out.path.push_back('/');
        out.path += segment;
        segment.clear();
        return 0;
    };
    for (std::size_t i = 1; i < p.size(); ++i) { // p[0] is '/'
        char c = p[i];
        if (c == '/') {
            if (const int s = flush()) return s;
            continue;
        }
        if (c == '%') {
            if (i + 2 >= p.size()) return 400;
            const int hi = hex(p[i + 1]), lo = hex(p[i + 2]);
            if (hi < 0 || lo < 0) return 400;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
            if (c == '\0' || c == '/') return 400; // an encoded separator would hide a ".."
        } else if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
            return 400;
        }
        segment.push_back(c);
    }
    if (const int s = flush()) return s;
    if (out.path.empty()) out.trailing_slash = true; // the root is a directory
    return 0;
}

// Whether `s` has a LF that no CR precedes.
inline bool has_bare_lf(std::string_view s) noexcept {
    for (std::size_t i = s.find('\n'); i != std::string_view::npos; i = s.find('\n', i + 1))
        if (i == 0 || s[i - 1] != '\r') return true;
    return false;
}

// The origin-form path (with its query) of an absolute-form target "http://authority/path?q":
// empty if the target is not an http(s) URI or carries userinfo (RFC 9110 §4.2.4: an error).
inline std::string_view absolute_path(std::string_view target, std::string& storage) {
    const std::size_t sep = target.find("://");
    if (sep == std::string_view::npos || !(iequals(target.substr(0, sep), "http") || iequals(target.substr(0, sep), "https")))
        return {};
    const std::string_view rest = target.substr(sep + 3);
    const std::size_t path_at = rest.find_first_of("/?#");
    const std::string_view authority = rest.substr(0, path_at);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return {};
    if (path_at == std::string_view::npos) return "/";
    if (rest[path_at] == '/') return rest.substr(path_at);
    storage = "/" + std::string(rest.substr(path_at)); // "http://host?q": the root with a query
    return storage;
}
} // namespace detail

//! Parses the request at the front of `buf`. incomplete: read more (the limit is not reached
//! yet); refused: answer `status` and close; complete: `consumed` bytes form the request.
inline parse_result parse(std::string_view whole, const limits& lim = {}) {
    using namespace detail;
    // Empty lines before a request line are ignored (counted in `consumed` and in the limit).
    std::size_t skipped = 0;
    while (whole.substr(skipped, 2) == "\r\n" && skipped + 2 < lim.header_bytes) skipped += 2;
    const std::string_view buf = whole.substr(skipped);
    // HEAD is known from the first bytes: every refusal of a HEAD request goes without a body.
    const bool head = buf.substr(0, 5) == "HEAD ";
    const auto refuse_head = [head](int status) { return refuse(status, head); };
    const std::size_t room = lim.header_bytes - skipped;
    const std::size_t end = buf.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (has_bare_lf(buf.substr(0, room))) return refuse_head(400);
        const std::size_t line_end = buf.find("\r\n");
        if (line_end == std::string_view::npos && buf.size() >= room) return refuse_head(414);
        if (buf.size() >= room) return refuse_head(431);
        // A request line already known to be bad need not wait for the rest.
        if (!buf.empty() && !is_tchar(buf.front()) && buf != "\r") return refuse_head(400);
        return {};
    }
    if (end + 4 > room) return refuse_head(buf.find("\r\n") + 2 > room ? 414 : 431);
    if (has_bare_lf(buf.substr(0, end + 4))) return refuse_head(400);
    parse_result r;
    r.consumed = skipped + end + 4;
    request& q = r.req;

    // The request line: method SP target SP version.
    const std::size_t line_end = buf.find("\r\n");
    const std::string_view line = buf.substr(0, line_end);
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return refuse_head(400);
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != std::string_view::npos) return refuse_head(400);
    const std::string_view verb = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                           version = line.substr(sp2 + 1);
    for (char c : verb)
        if (!is_tchar(c)) return refuse_head(400);
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
        version[5] > '9' || version[7] < '0' || version[7] > '9')
        return refuse_head(400);
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) return refuse_head(505);
    q.minor = version[7] - '0';
    r.head = head;
    if (verb == "GET") q.verb = method::get;
    else if (verb == "HEAD") q.verb = method::head;
    else if (verb == "POST" || verb == "PUT" || verb == "DELETE" || verb == "PATCH" || verb == "OPTIONS" ||
             verb == "TRACE" || verb == "CONNECT")
        return refuse_head(405);
    else return refuse_head(501);
    for (char c : target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return refuse_head(400);
    std::string absolute;
    const std::string_view path_target = !target.empty() && target.front() == '/' ? target : absolute_path(target, absolute);
    if (path_target.empty()) return refuse_head(400); // neither origin-form nor an http(s) URI

    // Header lines.
    std::size_t hosts = 0, count = 0;
    std::optional<std::uint64_t> content_length;
    bool transfer_encoding = false, conn_close = false, conn_keep_alive = false;
    for (std::size_t at = line_end + 2; at < end + 2;) {
        const std::size_t eol = buf.find("\r\n", at);
        const std::string_view h = buf.substr(at, eol - at);
        at = eol + 2;
        if (++count > lim.header_count) return refuse_head(431);
        if (h.empty() || h.front() == ' ' || h.front() == '\t') return refuse_head(400); // obs-fold
        const std::size_t colon = h.find(':');
        if (colon == std::string_view::npos || colon == 0) return refuse_head(400);
        const std::string_view name = h.substr(0, colon);
        for (char c : name)
            if (!is_tchar(c)) return refuse_head(400); // whitespace before the colon included
        const std::string_view value = trim_ows(h.substr(colon + 1));
        for (char c : value)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return refuse_head(400);
        if (iequals(name, "host")) ++hosts;
        else if (iequals(name, "content-length")) {
            if (value.empty() || value.size() > 18) return refuse_head(400);
            std::uint64_t n = 0;
            for (char c : value) {
                if (c < '0' || c > '9') return refuse_head(400);
                n = n * 10 + static_cast<std::uint64_t>(c - '0');
            }
            if (content_length && *content_length != n) return refuse_head(400);
            content_length = n;
        } else if (iequals(name, "transfer-encoding")) {
            transfer_encoding = true;
        } else if (iequals(name, "connection")) { // several: their tokens add up
            conn_close = conn_close || has_token(value, "close");
            conn_keep_alive = conn_keep_alive || has_token(value, "keep-alive");
        } else if (iequals(name, "if-modified-since")) {
            q.if_modified_since = value;
        }
    }
    if (content_length && transfer_encoding) return refuse_head(400);
    if (transfer_encoding || (content_length && *content_length > 0)) return refuse_head(413);
    if (q.minor == 1 && hosts != 1) return refuse_head(400);
    if (hosts > 1) return refuse_head(400);
    q.keep_alive = !conn_close && (q.minor == 1 || conn_keep_alive);
    if (const int s = decode_path(path_target, q)) return refuse_head(s);
    r.what = parse_result::complete;
    return r;
}

} // namespace http
