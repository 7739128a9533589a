import io.opentelemetry.api.baggage.Baggage;
import io.opentelemetry.api.baggage.BaggageBuilder;
import io.opentelemetry.context.Scope;
import java.util.Properties;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Sends COUNT records to TOPIC, each awaited, with BAGGAGE ("k=v,k2=v2") current.
 * Usage: InteropProducer BOOTSTRAP TOPIC COUNT BAGGAGE CLIENT_ID
 * Prints {"topic":..,"partition":..,"offset":..} per record acknowledged.
 */
public final class InteropProducer {
  private InteropProducer() {}

  public static void main(String[] args) throws Exception {
    String topic = args[1];
    int count = Integer.parseInt(args[2]);
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ProducerConfig.CLIENT_ID_CONFIG, args[4]);
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    BaggageBuilder baggage = Baggage.current().toBuilder();
    for (String pair : args[3].split(",")) {
      String[] kv = pair.split("=", 2);
      if (kv.length == 2) {
        baggage.put(kv[0], kv[1]);
      }
    }
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(props);
        Scope scope = baggage.build().makeCurrent()) {
      for (int i = 0; i < count; i++) {
        RecordMetadata sent = producer.send(new ProducerRecord<>(topic, "{\"order\": " + i + "}")).get();
        System.out.println(
            "{\"topic\":" + Report.quote(sent.topic())
                + ",\"partition\":" + sent.partition()
                + ",\"offset\":" + sent.offset() + "}");
        System.out.flush();
      }
    }
  }
}
