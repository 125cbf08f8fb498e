#pragma once
// The response side shared by examples/http-server and its benchmark reference
// (bench/reference/http_epoll.cpp), so that both send the same header bytes: dates in IMF-fixdate,
// Content-Type by extension, reason phrases, and the status line plus headers of a response.
#include <cctype>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace http {

//! IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
inline std::string date(std::time_t t) {
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char b[64];
    std::strftime(b, sizeof b, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return b;
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

//! The status line and headers of a response, ending with the blank line. `extra`: more header
//! lines, each ending in CRLF. A 304 carries no Content-Length.
inline std::string response_head(int status, std::string_view type, std::uint64_t length, bool keep, std::string_view extra = {}) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    h += "Server: ksvc-http-server\r\nDate: " + date(std::time(nullptr)) + "\r\n";
    if (!type.empty()) h += "Content-Type: " + std::string(type) + "\r\n";
    if (status != 304) h += "Content-Length: " + std::to_string(length) + "\r\n";
    h += extra;
    h += keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    return h;
}

} // namespace http
