import io.opentelemetry.api.baggage.Baggage;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanContext;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.Header;

/** One JSON line on stdout per record an app handled: what the Python test reads back. */
final class Report {
  private Report() {}

  static String quote(String text) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : text.toCharArray()) {
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }

  /** The record's headers in order (a repeated name appears once per value), the current span
   *  (the agent's process span while the for loop's body runs) and the current baggage. */
  static void consumed(String app, ConsumerRecord<String, String> record) {
    StringBuilder headers = new StringBuilder("[");
    for (Header header : record.headers()) {
      if (headers.length() > 1) {
        headers.append(',');
      }
      String value =
          header.value() == null ? "" : new String(header.value(), StandardCharsets.UTF_8);
      headers.append('[').append(quote(header.key())).append(',').append(quote(value)).append(']');
    }
    headers.append(']');
    Map<String, String> entries = new TreeMap<>();
    Baggage.current().forEach((key, entry) -> entries.put(key, entry.getValue()));
    StringBuilder baggage = new StringBuilder("{");
    for (Map.Entry<String, String> entry : entries.entrySet()) {
      if (baggage.length() > 1) {
        baggage.append(',');
      }
      baggage.append(quote(entry.getKey())).append(':').append(quote(entry.getValue()));
    }
    baggage.append('}');
    SpanContext span = Span.current().getSpanContext();
    System.out.println(
        "{\"app\":" + quote(app)
            + ",\"topic\":" + quote(record.topic())
            + ",\"partition\":" + record.partition()
            + ",\"offset\":" + record.offset()
            + ",\"value\":" + quote(record.value() == null ? "" : record.value())
            + ",\"trace_id\":" + quote(span.getTraceId())
            + ",\"span_id\":" + quote(span.getSpanId())
            + ",\"headers\":" + headers
            + ",\"baggage\":" + baggage
            + "}");
    System.out.flush();
  }
}
