import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads TOPIC from the start in group GROUP until COUNT records were seen (exit 0) or TIMEOUT
 * seconds passed (exit 2), handling them as most Java services do: for (record : records).
 * Usage: InteropConsumer BOOTSTRAP TOPIC GROUP COUNT TIMEOUT_SECONDS CLIENT_ID
 * Prints one Report.consumed line per record.
 */
public final class InteropConsumer {
  private InteropConsumer() {}

  static KafkaConsumer<String, String> consumer(String bootstrap, String group, String clientId) {
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    return new KafkaConsumer<>(props);
  }

  public static void main(String[] args) {
    int count = Integer.parseInt(args[3]);
    long deadline = System.nanoTime() + Duration.ofSeconds(Long.parseLong(args[4])).toNanos();
    int seen = 0;
    try (KafkaConsumer<String, String> consumer = consumer(args[0], args[2], args[5])) {
      consumer.subscribe(List.of(args[1]));
      while (seen < count && System.nanoTime() < deadline) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        for (ConsumerRecord<String, String> record : records) {
          Report.consumed("consumer", record);
          seen++;
        }
      }
    }
    System.exit(seen >= count ? 0 : 2);
  }
}
