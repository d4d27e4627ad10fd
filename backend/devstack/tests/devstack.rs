//! Starts the local emulators, checks they serve HTTP, and checks that
//! stopping them really frees their ports. Needs `make tools`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use brain2_devstack::{DevStack, DevStackPaths};

fn socket_addr(endpoint: &str) -> SocketAddr {
    endpoint.strip_prefix("http://").expect("endpoint is plain http").parse().expect("endpoint is host:port")
}

/// Sends a raw HTTP/1.0 request and returns the whole response.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("emulator accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

#[test]
fn starts_serves_and_stops() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let paths = DevStackPaths::discover(&root).expect("emulators installed (run `make tools`)");

    let started = Instant::now();
    let mut stack = DevStack::start(&paths).expect("devstack starts");
    eprintln!("devstack started in {:?}", started.elapsed());

    let dynamodb = socket_addr(stack.dynamodb_endpoint());
    let moto = socket_addr(stack.moto_endpoint());
    assert!(dynamodb.ip().is_loopback() && moto.ip().is_loopback());
    assert_ne!(dynamodb.port(), moto.port());

    // A real API call proves DynamoDB Local loaded its native libraries, not
    // just that Jetty is up. It does not verify signatures, only their shape.
    let body = "{}";
    let response = http(
        dynamodb,
        &format!(
            "POST / HTTP/1.0\r\nHost: {dynamodb}\r\n\
             Content-Type: application/x-amz-json-1.0\r\n\
             X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("TableNames"), "{response}");

    let response = http(moto, &format!("GET / HTTP/1.0\r\nHost: {moto}\r\n\r\n"));
    assert!(response.starts_with("HTTP/"), "{response}");

    let vars = stack.env_vars();
    let var = |key: &str| {
        vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(var("AWS_ENDPOINT_URL_DYNAMODB"), stack.dynamodb_endpoint());
    assert_eq!(var("AWS_ENDPOINT_URL_EVENTBRIDGE"), stack.moto_endpoint());
    assert_eq!(var("AWS_ENDPOINT_URL_SQS"), stack.moto_endpoint());
    assert_eq!(var("AWS_REGION"), "us-east-1");

    let env_file = std::env::temp_dir().join(format!("brain2-devstack-{}.env", std::process::id()));
    stack.write_env_file(&env_file).unwrap();
    let written = std::fs::read_to_string(&env_file).unwrap();
    std::fs::remove_file(&env_file).unwrap();
    let expected = format!("export AWS_ENDPOINT_URL_DYNAMODB={}\n", stack.dynamodb_endpoint());
    assert!(written.contains(&expected), "{written}");

    stack.stop();
    assert!(!accepts(dynamodb), "DynamoDB Local still listening");
    assert!(!accepts(moto), "moto_server still listening");
    // Stopping twice (and the Drop after it) must be harmless.
    stack.stop();
}
