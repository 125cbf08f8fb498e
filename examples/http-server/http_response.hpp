#pragma once
// The response side shared by examples/http-server and its benchmark reference
// (bench/reference/http_epoll.cpp), so that both send the same header bytes: dates in IMF-fixdate,
// Content-Type by extension, reason phrases, and the status line plus headers of a response.
#include <cctype>
#include <charconv>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace http {

//! IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", appended to `out`.
inline void append_date(std::string& out, std::time_t t) {
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char b[64];
    out.append(b, std::strftime(b, sizeof b, "%a, %d %b %Y %H:%M:%S GMT", &tm));
}
//! A header line "Name: <IMF-fixdate>\r\n" appended to `out`.
inline void append_date_header(std::string& out, std::string_view name, std::time_t t) {
    out += name;
    out += ": ";
    append_date(out, t);
    out += "\r\n";
}
//! The header line a thread formatted last for one header, and the time it shows. Formatting a
//! date costs more than the rest of a small response head, while a Date changes once a second
//! and a file's Last-Modified seldom: each is formatted again only when its time changes.
struct date_line_cache {
    std::time_t at = -1;
    std::string line;
};
inline void append_date_header(std::string& out, std::string_view name, std::time_t t, date_line_cache& cache) {
    if (t != cache.at) {
        cache.line.clear();
        append_date_header(cache.line, name, t);
        cache.at = t;
    }
    out += cache.line;
}
//! An HTTP-date back to seconds: IMF-fixdate, and the obsolete RFC 850 and asctime forms that
//! RFC 9110 §5.6.7 says a recipient must accept; nullopt for anything else (the header is then
//! ignored).
inline std::optional<std::time_t> parse_date(std::string_view v) {
    const std::string s(v);
    for (const char* form : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
        std::tm tm{};
        const char* end = ::strptime(s.c_str(), form, &tm);
        if (end && !*end) return ::timegm(&tm);
    }
    return std::nullopt;
}

//! By the extension of the last path segment (case-insensitive); application/octet-stream else.
inline std::string_view content_type(std::string_view path) {
    const std::size_t dot = path.rfind('.');
    const std::size_t slash = path.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return "application/octet-stream";
    std::string ext(path.substr(dot + 1));
    for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    static const std::pair<std::string_view, std::string_view> types[] = {
        {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"}, {"txt", "text/plain; charset=utf-8"},
        {"css", "text/css"}, {"js", "text/javascript"}, {"mjs", "text/javascript"}, {"json", "application/json"},
        {"xml", "application/xml"}, {"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"}, {"gif", "image/gif"}, {"webp", "image/webp"}, {"ico", "image/x-icon"},
        {"pdf", "application/pdf"}, {"wasm", "application/wasm"}, {"woff2", "font/woff2"}, {"mp4", "video/mp4"},
        {"gz", "application/gzip"}, {"zip", "application/zip"}, {"tar", "application/x-tar"}, {"md", "text/markdown; charset=utf-8"},
    };
    for (const auto& [e, t] : types)
        if (e == ext) return t;
    return "application/octet-stream";
}

inline const char* reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

//! The status line and headers of a response, ending with the blank line, written into `h`
//! (cleared first: a buffer kept per connection keeps its capacity, and a response costs no
//! allocation). `last_modified` adds a Last-Modified header; `extra`: more header lines, each
//! ending in CRLF. A 304 carries no Content-Length.
inline void write_response_head(std::string& h, int status, std::string_view type, std::uint64_t length, bool keep,
                                std::optional<std::time_t> last_modified = std::nullopt, std::string_view extra = {}) {
    const auto number = [&h](std::uint64_t v) {
        char b[24];
        h.append(b, static_cast<std::size_t>(std::to_chars(b, b + sizeof b, v).ptr - b));
    };
    h.clear();
    h += "HTTP/1.1 ";
    number(static_cast<std::uint64_t>(status));
    h += ' ';
    h += reason(status);
    h += "\r\nServer: ksvc-http-server\r\n";
    thread_local date_line_cache date, modified; // per thread: a shard, or the reference's loop
    append_date_header(h, "Date", std::time(nullptr), date);
    if (!type.empty()) {
        h += "Content-Type: ";
        h += type;
        h += "\r\n";
    }
    if (status != 304) {
        h += "Content-Length: ";
        number(length);
        h += "\r\n";
    }
    if (last_modified) append_date_header(h, "Last-Modified", *last_modified, modified);
    h += extra;
    h += keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
}
inline std::string response_head(int status, std::string_view type, std::uint64_t length, bool keep, std::string_view extra = {}) {
    std::string h;
    write_response_head(h, status, type, length, keep, std::nullopt, extra);
    return h;
}

} // namespace http
