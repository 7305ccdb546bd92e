//! `lever healthcheck`: GET `/healthz` of the `lever serve` on this machine, exit 0 when it
//! answers 200 and 1 otherwise. For container health checks: the image has no shell or curl.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::Failure;

/// The URL of `/healthz` for a server listening on `listen` (`HOST:PORT`, as `lever serve
/// --listen` takes it): a wildcard address (`0.0.0.0`, `[::]`) is asked on its loopback, any
/// other address or host name as it is.
pub fn healthz_url(listen: &str) -> Result<String, String> {
    let listen = listen.trim();
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        let ip = match addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        return Ok(format!(
            "http://{}/healthz",
            SocketAddr::new(ip, addr.port())
        ));
    }
    match listen.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(format!("http://{host}:{port}/healthz"))
        }
        _ => Err(format!(
            "LEVER_LISTEN={listen:?} is not an address such as 0.0.0.0:8080"
        )),
    }
}

/// Asks `/healthz` once, within `timeout`: one HTTP/1.1 GET on a fresh connection, judged by
/// its status line. (std only: the binary's HTTP clients are built for GitHub and AWS, and a
/// loopback probe needs no TLS, redirects or pooling.)
pub fn run(listen: &str, timeout: Duration) -> Result<(), Failure> {
    let url = healthz_url(listen).map_err(Failure::failed)?;
    let status =
        get_status(&url, timeout).map_err(|e| Failure::failed(format!("GET {url}: {e}")))?;
    if status == 200 {
        println!("healthy: GET {url} answered 200");
        Ok(())
    } else {
        Err(Failure::failed(format!("GET {url} answered {status}")))
    }
}

/// The status code of `GET url` (`http://HOST:PORT/PATH`).
fn get_status(url: &str, timeout: Duration) -> std::io::Result<u16> {
    use std::io::{BufRead, BufReader, Error, Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| Error::other(format!("{authority} has no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: lever-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
    let mut line = String::new();
    // The status line; at most 1 KiB is read whatever the server sends.
    BufReader::new(stream.take(1024)).read_line(&mut line)?;
    // "HTTP/1.1 200 OK"
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(Error::other(format!(
            "not an HTTP answer: {:?}",
            line.trim_end()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::healthz_url;

    #[test]
    fn healthz_url_asks_wildcards_on_loopback_and_the_rest_as_given() {
        let table = [
            ("0.0.0.0:8080", Ok("http://127.0.0.1:8080/healthz")),
            ("[::]:9000", Ok("http://[::1]:9000/healthz")),
            ("127.0.0.1:8080", Ok("http://127.0.0.1:8080/healthz")),
            ("10.0.0.5:80", Ok("http://10.0.0.5:80/healthz")),
            ("[::1]:8080", Ok("http://[::1]:8080/healthz")),
            (" localhost:8080 ", Ok("http://localhost:8080/healthz")),
            ("8080", Err(())),
            (":8080", Err(())),
            ("localhost:http", Err(())),
        ];
        for (listen, want) in table {
            let got = healthz_url(listen);
            match want {
                Ok(url) => assert_eq!(got.as_deref(), Ok(url), "{listen}"),
                Err(()) => {
                    let e = got.expect_err(listen);
                    assert!(e.contains("LEVER_LISTEN"), "{listen}: {e}");
                }
            }
        }
    }
}
