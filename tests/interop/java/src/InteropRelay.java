import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Forwards COUNT records from IN to OUT with the consumed headers (the enrichment pattern), then
 * exits 0; exits 2 if TIMEOUT seconds pass first.
 * Usage: InteropRelay BOOTSTRAP IN OUT GROUP COUNT TIMEOUT_SECONDS CLIENT_ID
 * Prints one Report.consumed line per record it forwarded.
 */
public final class InteropRelay {
  private InteropRelay() {}

  public static void main(String[] args) throws Exception {
    String out = args[2];
    int count = Integer.parseInt(args[4]);
    long deadline = System.nanoTime() + Duration.ofSeconds(Long.parseLong(args[5])).toNanos();
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ProducerConfig.CLIENT_ID_CONFIG, args[6] + "-producer");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    int seen = 0;
    try (KafkaConsumer<String, String> consumer =
            InteropConsumer.consumer(args[0], args[3], args[6]);
        KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
      consumer.subscribe(List.of(args[1]));
      while (seen < count && System.nanoTime() < deadline) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        for (ConsumerRecord<String, String> record : records) {
          Report.consumed("relay", record);
          producer
              .send(new ProducerRecord<>(out, null, record.key(), record.value() + " relayed",
                  record.headers()))
              .get();
          seen++;
        }
      }
    }
    System.exit(seen >= count ? 0 : 2);
  }
}
