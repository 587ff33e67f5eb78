# The fleet's front door: one global external Application Load Balancer (anycast IP, Google
# front ends) with one backend per region's managed instance group. Global, not regional:
# the fleet spans 1 to 10 regions, and only the global load balancer sends each user to the
# nearest region with capacity and fails over when a region is unhealthy or full, behind one
# address; a regional one would need an address, a proxy-only subnet and DNS steering per
# region.
locals {
  https = length(var.domains) > 0
}

resource "google_compute_global_address" "this" {
  project     = var.project_id
  name        = var.name
  description = "Front door of the disposable-ml GPU fleet (managed by Terraform)."
}

# Readiness, aggressive: a host that stops answering /readyz (model reload, GPU trouble,
# draining) leaves the rotation within interval x unhealthy_threshold seconds.
resource "google_compute_health_check" "ready" {
  project             = var.project_id
  name                = "${var.name}-readyz"
  description         = "Front door readiness: GET /readyz"
  check_interval_sec  = var.ready_check_interval_sec
  timeout_sec         = var.ready_timeout_sec
  healthy_threshold   = var.ready_healthy_threshold
  unhealthy_threshold = var.ready_unhealthy_threshold

  http_health_check {
    port_specification = "USE_NAMED_PORT"
    request_path       = var.ready_path
  }

  log_config {
    enable = true
  }
}

resource "google_compute_backend_service" "this" {
  project               = var.project_id
  name                  = var.name
  description           = "GPU fleet backends, one per region (managed by Terraform)."
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTP"
  port_name             = var.port_name
  timeout_sec           = var.request_timeout_sec
  health_checks         = [google_compute_health_check.ready.id]
  security_policy       = var.security_policy

  connection_draining_timeout_sec = var.connection_draining_timeout_sec

  # RATE: each host takes at most max_rate_per_instance requests per second (a measured
  # per-host rate); the regional autoscalers target a share of it.
  dynamic "backend" {
    for_each = var.backends
    content {
      group                 = backend.value
      balancing_mode        = "RATE"
      max_rate_per_instance = var.max_rate_per_instance
      capacity_scaler       = 1
      description           = "region ${backend.key}"
    }
  }

  log_config {
    enable      = true
    sample_rate = var.log_sample_rate
  }
}

resource "google_compute_url_map" "this" {
  project         = var.project_id
  name            = var.name
  description     = "Every path to the fleet (managed by Terraform)."
  default_service = google_compute_backend_service.this.id
}

# HTTPS with a Google-managed certificate when domains are given; plain HTTP then only
# redirects. Without domains (a first test of the fleet), HTTP serves directly.
resource "google_compute_managed_ssl_certificate" "this" {
  count = local.https ? 1 : 0

  project = var.project_id
  name    = "${var.name}-cert"

  managed {
    domains = var.domains
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "this" {
  count = local.https ? 1 : 0

  project         = var.project_id
  name            = "${var.name}-tls"
  description     = "TLS 1.2+ with modern ciphers only."
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "this" {
  count = local.https ? 1 : 0

  project          = var.project_id
  name             = "${var.name}-https"
  url_map          = google_compute_url_map.this.id
  ssl_certificates = [google_compute_managed_ssl_certificate.this[0].id]
  ssl_policy       = google_compute_ssl_policy.this[0].id
}

resource "google_compute_global_forwarding_rule" "https" {
  count = local.https ? 1 : 0

  project               = var.project_id
  name                  = "${var.name}-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.this.address
  port_range            = "443"
  target                = google_compute_target_https_proxy.this[0].id
}

resource "google_compute_url_map" "redirect" {
  count = local.https ? 1 : 0

  project     = var.project_id
  name        = "${var.name}-redirect"
  description = "HTTP to HTTPS (managed by Terraform)."

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "this" {
  project = var.project_id
  name    = "${var.name}-http"
  url_map = local.https ? google_compute_url_map.redirect[0].id : google_compute_url_map.this.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project_id
  name                  = "${var.name}-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.this.address
  port_range            = "80"
  target                = google_compute_target_http_proxy.this.id
}
